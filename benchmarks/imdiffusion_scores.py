"""ImDiffusion ``fast`` scores (shrunk: 3 epochs, windows of 20) of one generated series, saved as .npy,
to compare what two versions of the code compute for the same parameters and seed.

    git archive <commit> src | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old/src python benchmarks/imdiffusion_scores.py /tmp/old.npy
    python benchmarks/imdiffusion_scores.py /tmp/new.npy
    python benchmarks/imdiffusion_scores.py --compare /tmp/old.npy /tmp/new.npy
"""

from __future__ import annotations

import sys

import numpy as np

from diffad import ImDiffusionDetector
from diffad.data.synthetic import make_series
from diffad.metrics import auc_pr, auc_roc


def data():
    return make_series(n_train=1500, n_test=1000, n_channels=5, n_anomalies=5, seed=0)


def main(argv: list[str]) -> None:
    d = data()
    if argv[0] == "--compare":
        a, b = np.load(argv[1]), np.load(argv[2])
        diff = np.abs(a - b)
        print(
            f"max |diff| {diff.max():.3g}, median {np.median(diff):.3g}, correlation {np.corrcoef(a, b)[0, 1]:.6f}"
        )
        print(f"AUC-PR {auc_pr(d.labels, a):.4f} -> {auc_pr(d.labels, b):.4f}")
        print(f"AUC-ROC {auc_roc(d.labels, a):.4f} -> {auc_roc(d.labels, b):.4f}")
        return
    det = ImDiffusionDetector.fast(
        max_epochs=3, window=20, n_strips=4, test_stride=10, train_stride=2, random_state=0
    ).fit(d.train)
    np.save(argv[0], det.decision_function(d.test))


if __name__ == "__main__":
    main(sys.argv[1:])
