"""Time diffad.metrics.evaluate against the reference implementation (TSB-AD) on the same data.

    python benchmarks/metrics_speed.py [--n 100000] [--segments 50] [--window 100]
                                       [--reference-python /path/to/venv/bin/python]

The data is generated here (numpy only, fixed seed): ``n`` points, ``segments`` anomaly segments
of 10-300 points, noisy informative scores. With ``--reference-python`` the same data is scored by
``TSB_AD.evaluation.metrics.get_metrics`` in that interpreter (install ``tsb-ad`` there, e.g.
``pip install --no-deps tsb-ad==1.5 'numpy<2' scikit-learn``; it is never a diffad dependency).
Pin to one core with ``taskset -c 0``. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np


def make_case(n: int, n_segments: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.zeros(n, dtype=np.int8)
    slots = np.sort(rng.choice(np.arange(0, n - 400, (n - 400) // n_segments), n_segments, replace=False))
    for s in slots:
        y[s : s + rng.integers(10, 300)] = 1
    score = rng.random(n) + 0.8 * y * rng.random(n)
    return y, score


def run_reference(n: int, n_segments: int, window: int) -> float:
    from TSB_AD.evaluation.metrics import get_metrics

    y, score = make_case(n, n_segments)
    t = time.perf_counter()
    get_metrics(score, y, slidingWindow=window)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--segments", type=int, default=50)
    ap.add_argument("--window", type=int, default=100)
    ap.add_argument("--reference-python", default=None)
    ap.add_argument("--as-reference", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.as_reference:
        import warnings

        warnings.filterwarnings("ignore")
        print(json.dumps({"seconds": run_reference(args.n, args.segments, args.window)}))
        return

    from diffad.metrics import evaluate

    y, score = make_case(args.n, args.segments)
    preds = (score > np.quantile(score, 0.95)).astype(np.int8)
    t = time.perf_counter()
    evaluate(y, score, preds, window=args.window)
    ours = time.perf_counter() - t
    out = {"n": args.n, "segments": args.segments, "window": args.window, "diffad_evaluate_s": round(ours, 3)}
    if args.reference_python:
        cmd = [
            args.reference_python,
            __file__,
            "--as-reference",
            "--n",
            str(args.n),
            "--segments",
            str(args.segments),
            "--window",
            str(args.window),
        ]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
        ref = json.loads(res.stdout.strip().splitlines()[-1])["seconds"]
        out["reference_get_metrics_s"] = round(ref, 3)
        out["speedup"] = round(ref / ours, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
