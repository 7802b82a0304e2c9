"""ImDiffusion and the baselines with one model per spacecraft channel of SMAP or MSL.

    python benchmarks/imdiffusion_per_channel.py --collection MSL --data-dir ../shared/data \
        --seed 0 --threads 1 --json results/per-channel/MSL-seed0.json

``MSL`` and ``SMAP`` as the harness loads them are 27 and 53 unrelated channels laid end to end, scored
by one model. Here every channel (``MSL/M-6``, ...) gets its own fit of each detector: the ``fast``
preset of ``ImDiffusionDetector`` (``random_state=--seed``) and k-NN, PCA and Isolation Forest built as a
``diffad bench`` cell builds them. Each channel is scored on its own test part; the figures are the
means over the channels of the honest AUC-PR and VUS-PR (window 100), since scores of separate models
are on separate scales. One JSON row per channel and detector; a re-run skips the channels already in
``--json`` (so a long run can be resumed). A channel a detector cannot fit (too short for its
windows, or constant in training) is kept as a row with the error and left out of that detector's mean.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from diffad import DataValidationError, ImDiffusionDetector
from diffad.bench import DetectorSpec
from diffad.data import load_dataset
from diffad.data.loaders import COLLECTIONS, resolve_data_dir
from diffad.metrics import auc_pr, vus

IMD = "ImDiffusion fast"
BASELINES = [
    DetectorSpec("kNN", "KNNDetector"),
    DetectorSpec("PCA", "PCADetector"),
    DetectorSpec("IsolationForest", "IsolationForestDetector"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--collection", choices=["MSL", "SMAP"], default="MSL")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    ap.add_argument("--json", type=Path, required=True, help="one row per channel and detector (resumable)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = json.loads(args.json.read_text()) if args.json.is_file() else []
    done = {r["dataset"] for r in rows}
    found = COLLECTIONS[args.collection].entities(resolve_data_dir(args.data_dir))
    channels = [f"{args.collection}/{e}" for e in found if e != args.collection]
    for name in channels:
        if name in done:
            continue
        ds = load_dataset(name, args.data_dir)
        y = ds.test_labels
        dets = [(IMD, lambda: ImDiffusionDetector.fast(random_state=args.seed))]
        dets += [(spec.name, lambda spec=spec: spec.build(args.seed)) for spec in BASELINES]
        for det_name, make in dets:
            t0 = time.perf_counter()
            try:
                score = make().fit(ds.train).decision_function(ds.test)
            except DataValidationError as e:  # a channel a detector cannot fit: kept as a row, not a crash
                rows.append({"dataset": name, "detector": det_name, "seed": args.seed, "error": str(e)})
                print(f"{name:12s} {det_name:16s} not fitted: {e}", flush=True)
                continue
            seconds = time.perf_counter() - t0
            pr, vpr = auc_pr(y, score), vus(y, score, 100)[1]
            rows.append(
                {
                    "dataset": name,
                    "detector": det_name,
                    "seed": args.seed,
                    "AUC-PR": pr,
                    "VUS-PR": vpr,
                    "seconds": seconds,
                    "n_train": len(ds.train),
                    "n_test": len(ds.test),
                }
            )
            print(f"{name:12s} {det_name:16s} AUC-PR {pr:.3f} VUS-PR {vpr:.3f} ({seconds:.0f} s)", flush=True)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    summarise(rows, args.collection, len(channels))


def summarise(rows: list[dict], collection: str, n_channels: int) -> None:
    """Means over the channels every detector fitted, and on how many of them ImDiffusion's AUC-PR is
    above / below k-NN's by more than 0.005; the channels left out are named."""
    by: dict[str, dict[str, tuple[float, float]]] = {}
    for r in rows:
        by.setdefault(r["detector"], {})
        if "error" not in r:
            by[r["detector"]][r["dataset"]] = (r["AUC-PR"], r["VUS-PR"])
    common = sorted(set.intersection(*(set(v) for v in by.values()))) if by else []
    left_out = sorted({r["dataset"] for r in rows} - set(common))
    print(
        f"\nmeans over the {len(common)} of {n_channels} channels of {collection} every detector fitted"
        f" (AUC-PR / VUS-PR); left out: {', '.join(left_out) or 'none'}"
    )
    for det_name, vals in by.items():
        pr, vpr = np.mean([vals[c] for c in common], axis=0)
        print(f"| {det_name} | {pr:.3f} / {vpr:.3f} |")
    if IMD in by and "kNN" in by:
        diff = np.array([by[IMD][c][0] - by["kNN"][c][0] for c in common])
        print(
            f"ImDiffusion's AUC-PR above / below k-NN's by more than 0.005: "
            f"{int((diff > 0.005).sum())} / {int((diff < -0.005).sum())} channels"
        )


if __name__ == "__main__":
    main()
