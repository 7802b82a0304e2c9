"""Cost of one service batch, by part: ``update_many`` (scoring), pickling the state, writing SQLite.

    python benchmarks/stream_batch_cost.py --channels 8 --series 8

One ImDiffusion ``fast`` model (1 epoch: scoring cost does not depend on it), ``--series`` scorers
each given 50 points, then ten batches of 25 points per series (one window each); prints the mean
milliseconds per batch of each part. ``--windows-per-call``: the network cost per window with 16 and
256 windows per call. ``--compile``: the network through ``torch.compile`` (``compile=True``), compiled
by ``warm_up`` before the timing (its seconds are printed).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from diffad import ImDiffusionDetector
from diffad.data.synthetic import make_series
from diffad.runtime import keep_freed_memory
from diffad.serve import StateStore
from diffad.stream import StreamScorer, update_many


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--series", type=int, default=8)
    ap.add_argument(
        "--windows-per-call", action="store_true", help="also time 128 windows at 16 and 256 per call"
    )
    ap.add_argument("--compile", action="store_true", help="score with compile=True (compiled first)")
    args = ap.parse_args()
    keep_freed_memory()
    d = make_series(n_train=2000, n_test=3000, n_channels=args.channels, n_anomalies=5, seed=0)
    det = ImDiffusionDetector.fast(random_state=0, verbose=False, max_epochs=1, epoch_windows=64).fit(d.train)
    if args.compile:
        t = time.perf_counter()
        det.set_params(compile=True).warm_up()
        print(f"compiled in {time.perf_counter() - t:.1f} s")
    scorers = [StreamScorer(det) for _ in range(args.series)]
    for s in scorers:
        s.update(d.test[:50])
    store = StateStore(Path(tempfile.mkdtemp()) / "state.sqlite")
    total = {"scoring": 0.0, "pickle": 0.0, "sqlite": 0.0}
    rounds = 10
    for r in range(rounds):
        a = 50 + 25 * r
        t = time.perf_counter()
        update_many([(s, d.test[a : a + 25], None) for s in scorers])
        total["scoring"] += time.perf_counter() - t
        t = time.perf_counter()
        blobs = [s.dumps() for s in scorers]
        total["pickle"] += time.perf_counter() - t
        t = time.perf_counter()
        store.save([(f"s{i}", b, None, [], []) for i, b in enumerate(blobs)])
        total["sqlite"] += time.perf_counter() - t
    print(
        {k: f"{1000 * v / rounds:.1f} ms/batch" for k, v in total.items()},
        f"state {len(blobs[0])} bytes/series",
    )
    if args.windows_per_call:  # network cost per window by how many windows share a call
        import numpy as np

        W = np.stack([d.test[25 * i : 25 * i + 50] for i in range(110)] * 2)[:128]
        for ibs in (32, 512):  # 2 passes per window: 16 and 256 windows per call
            det.set_params(inference_batch_size=ibs)
            t = time.perf_counter()
            det._stream_windows(W, np.arange(len(W)))
            print(f"{ibs // 2} windows per call: {1000 * (time.perf_counter() - t) / len(W):.1f} ms/window")


if __name__ == "__main__":
    main()
