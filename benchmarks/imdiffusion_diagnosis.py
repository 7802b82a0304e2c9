"""What an imputation-error score can reach on SMD: two imputers that learn nothing, scored by
ImDiffusion's rule, as a reference for the detector's own imputation.

    python benchmarks/imdiffusion_diagnosis.py --data-dir ../shared/data \
        --machines machine-1-2 machine-1-5 machine-2-1 machine-2-4

Every score is the squared imputation error of a time point, divided per channel by its mean on the
validation tail (the last 10 % of the training series), maximum over channels: the ``fast`` preset's
rule. The imputers:

- ``strip interpolation``: each grating strip (window 50 / 10 strips = 5 points, the ``fast`` preset's)
  is filled by the straight line between the observed points just before and just after it;
- ``training mean``: every point is "imputed" by its channel's training mean (ignores the context).

Prints AUC-PR and AUC-ROC per machine (threshold-free, honest).
"""

from __future__ import annotations

import argparse

import numpy as np

from diffad.data import load_dataset
from diffad.detectors.imdiffusion import channel_error_scale
from diffad.metrics import auc_pr, auc_roc

STRIP = 5


def strip_interpolation(X: np.ndarray) -> np.ndarray:
    n = len(X)
    idx = np.arange(n)
    start = (idx // STRIP) * STRIP
    left, right = np.clip(start - 1, 0, n - 1), np.clip(start + STRIP, 0, n - 1)
    w = ((idx - left) / np.maximum(right - left, 1))[:, None]
    return X[left] * (1 - w) + X[right] * w


def references(ds) -> dict[str, tuple[float, float]]:
    lo, hi = ds.train.min(axis=0), ds.train.max(axis=0)
    a = 1.0 / np.where(hi > lo, hi - lo, 1.0)
    train, test = (ds.train - lo) * a, (ds.test - lo) * a  # the detector's min-max scaling
    tail = train[int(0.9 * len(train)) :]
    y = ds.test_labels
    out = {}
    for name, imputer in (
        ("strip interpolation", strip_interpolation),
        ("training mean", lambda X: np.broadcast_to(train.mean(axis=0), X.shape)),
    ):
        scale = channel_error_scale((tail - imputer(tail)) ** 2, axis=0)
        score = ((test - imputer(test)) ** 2 / scale).max(axis=1)
        out[name] = (auc_pr(y, score), auc_roc(y, score))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument(
        "--machines", nargs="+", default=["machine-1-2", "machine-1-5", "machine-2-1", "machine-2-4"]
    )
    args = ap.parse_args()
    print("| machine | imputer | AUC-PR | AUC-ROC |\n|---|---|---|---|")
    for m in args.machines:
        for name, (pr, roc) in references(load_dataset(f"SMD/{m}", args.data_dir)).items():
            print(f"| {m} | {name} | {pr:.3f} | {roc:.3f} |")


if __name__ == "__main__":
    main()
