"""Wall time of ImDiffusion's fit and scoring on SMD machines, in one process (the #34 target: the
``fast`` preset fits and scores one machine in at most 180 s on 2 cores).

    python benchmarks/imdiffusion_speed.py --data-dir ../shared/data --machine machine-1-2 \
        --preset fast --repeats 1 --out results/imdiffusion_speed.json [--set heads=2 ...]

Run it on a quiet machine: the times are wall-clock. It prints one JSON line per machine and repeat
(fit and score seconds, epochs, scored points per second, honest AUC-PR / VUS-PR of both
``score="mean"`` and ``score="vote"`` from the same step errors: the second costs nothing) and writes
them all to ``--out`` (rows already there for the same machine, seed and settings are kept and not
run again).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from diffad import ImDiffusionDetector
from diffad.config import parse_assignments
from diffad.data import load_dataset
from diffad.fsio import atomic_write_text
from diffad.metrics import auc_pr, vus
from diffad.runtime import allocator_setting, keep_freed_memory


def measure(factory, overrides: dict, ds, machine: str, args, rep: int) -> dict:
    det = factory(device=args.device, random_state=args.seed, **overrides)
    t0 = time.perf_counter()
    det.fit(ds.train)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    scores = det.decision_function(ds.test)
    det.predict(ds.test)
    score_s = time.perf_counter() - t0
    vote = det.set_params(score="vote").decision_function(ds.test)  # the same step errors, memoised
    h = det.history_
    return {
        "preset": args.preset,
        "overrides": overrides,
        "machine": machine,
        "seed": args.seed,
        "repeat": rep,
        "fit_s": round(fit_s, 2),
        "score_s": round(score_s, 2),
        "total_s": round(fit_s + score_s, 2),
        "epochs": len(h["val_loss"]),
        "best_epoch": h["best_epoch"],
        "stopped_by": h.get("stopped_by"),
        "epoch_seconds": [round(s, 2) for s in h["epoch_seconds"]],
        "test_points_per_s": round(len(ds.test) / score_s, 1),
        "AUC-PR": round(auc_pr(ds.test_labels, scores), 4),
        "VUS-PR": round(vus(ds.test_labels, scores, 100)[1], 4),
        "AUC-PR (score=vote)": round(auc_pr(ds.test_labels, vote), 4),
        "VUS-PR (score=vote)": round(vus(ds.test_labels, vote, 100)[1], 4),
        "ran_on": {
            "cpu": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "device": det.device_,
            "malloc": allocator_setting(),
            "torch": torch.__version__,
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--machine", nargs="+", default=["machine-1-2"], help="one or more SMD machines")
    ap.add_argument("--preset", default="fast", choices=["fast", "paper"])
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a parameter override")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", default="results/imdiffusion_speed.json")
    args = ap.parse_args()
    keep_freed_memory()
    overrides = parse_assignments(args.set)
    factory = getattr(ImDiffusionDetector, args.preset)
    rows = json.loads(Path(args.out).read_text()) if Path(args.out).is_file() else []
    for machine in args.machine:
        ds = load_dataset(f"SMD/{machine}", args.data_dir)
        for rep in range(args.repeats):
            key = (args.preset, overrides, machine, args.seed, rep)
            if any((r["preset"], r["overrides"], r["machine"], r["seed"], r["repeat"]) == key for r in rows):
                continue
            rows.append(measure(factory, overrides, ds, machine, args, rep))
            print(json.dumps(rows[-1]), flush=True)
            atomic_write_text(args.out, json.dumps(rows, indent=1))
    print(f"median total: {np.median([r['total_s'] for r in rows]):.1f} s")


if __name__ == "__main__":
    main()
