"""Seconds per training epoch and scored points per second of ImDiffusion's ``paper()`` and ``fast()``
presets, in float32, with bfloat16 autocast and with bfloat16 plus ``torch.compile`` (meant for a GPU).

    python benchmarks/imdiffusion_gpu.py --data-dir ../shared/data --machine machine-1-2 \
        --presets paper fast --modes fp32 bf16 bf16-compile --epochs 3 --out results/imdiffusion-gpu.json

For each preset and mode it trains ``--epochs`` epochs on the machine's training series (early stopping
off) and scores its test series, then prints one JSON row and writes all rows to ``--out``:

- ``epoch_s``: every epoch's wall seconds (the training steps and the validation loss); ``epoch_s_steady``
  is their median without the first epoch (which pays for ``torch.compile`` and CUDA's warm-up);
- ``points_per_s``: test points scored per second, after a warm-up call (``warm_up()``, which compiles);
- ``vs_published``: the published code's figures on an H100 for SMD machine-1-2 (71 s of training plus
  42 s of validation per epoch, 716 points per second scored) divided by these, so 10 means ten times
  faster.

On the CPU, ``bf16`` does nothing (the detectors' ``amp`` applies on CUDA only), so its modes are
skipped there; ``--train-points`` / ``--test-points`` cut the series for a quick run.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from diffad import ImDiffusionDetector
from diffad.config import parse_assignments
from diffad.data import load_dataset
from diffad.fsio import atomic_write_text
from diffad.runtime import keep_freed_memory

PUBLISHED_H100 = {"epoch_s": 71.0 + 42.0, "points_per_s": 716.0}  # published code, SMD machine-1-2
MODES = {"fp32": {"amp": False, "compile": False}, "compile": {"amp": False, "compile": True}}
MODES |= {"bf16": {"amp": True, "compile": False}, "bf16-compile": {"amp": True, "compile": True}}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure(preset: str, mode: str, train: np.ndarray, test: np.ndarray, args, overrides: dict) -> dict:
    factory = getattr(ImDiffusionDetector, preset)
    det = factory(
        device=args.device,
        random_state=args.seed,
        max_epochs=args.epochs,
        patience=args.epochs + 1,
        **MODES[mode],
        **overrides,
    )
    t0 = time.perf_counter()
    det.fit(train)
    fit_s = time.perf_counter() - t0
    det.warm_up()
    _sync(det.device_)
    t0 = time.perf_counter()
    det.decision_function(test)
    _sync(det.device_)
    score_s = time.perf_counter() - t0
    epochs = [float(s) for s in det.history_["epoch_seconds"]]
    steady = float(np.median(epochs[1:] if len(epochs) > 1 else epochs))
    pps = len(test) / score_s
    dev = det.device_
    return {
        "preset": preset,
        "mode": mode,
        "overrides": overrides,
        "machine": args.machine,
        "train_points": len(train),
        "test_points": len(test),
        "epoch_s": [round(s, 2) for s in epochs],
        "epoch_s_steady": round(steady, 2),
        "fit_s": round(fit_s, 2),
        "score_s": round(score_s, 2),
        "points_per_s": round(pps, 1),
        "vs_published": {
            "epoch": round(PUBLISHED_H100["epoch_s"] / steady, 2),
            "scoring": round(pps / PUBLISHED_H100["points_per_s"], 2),
        },
        "ran_on": {
            "device": dev,
            "device_name": torch.cuda.get_device_name(dev)
            if dev.startswith("cuda")
            else platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--machine", default="machine-1-2", help="an SMD machine")
    ap.add_argument("--presets", nargs="+", default=["paper", "fast"], choices=["paper", "fast"])
    ap.add_argument("--modes", nargs="+", default=["fp32", "bf16", "bf16-compile"], choices=list(MODES))
    ap.add_argument("--epochs", type=int, default=3, help="epochs to train (early stopping off)")
    ap.add_argument("--train-points", type=int, default=None, help="train on the first N points only")
    ap.add_argument("--test-points", type=int, default=None, help="score the first N test points only")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a parameter override")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None, help="default: CUDA when available, else the CPU")
    ap.add_argument("--out", default="results/imdiffusion-gpu.json")
    args = ap.parse_args()
    if args.epochs < 1:
        ap.error("--epochs must be at least 1")
    keep_freed_memory()
    overrides = parse_assignments(args.set)
    ds = load_dataset(f"SMD/{args.machine}", args.data_dir)
    train, test = ds.train[: args.train_points], ds.test[: args.test_points]
    cuda = (args.device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
    rows = []
    for preset in args.presets:
        for mode in args.modes:
            if MODES[mode]["amp"] and not cuda:
                print(f"{preset} {mode}: skipped (bfloat16 autocast applies on CUDA only)", flush=True)
                continue
            rows.append(measure(preset, mode, train, test, args, overrides))
            print(json.dumps(rows[-1]), flush=True)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(args.out, json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
