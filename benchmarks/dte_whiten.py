"""DTE-C on whitened inputs: does isotropic noise in the space where the training rows are isotropic
rank anomalies better than noise in the standardised space?

    python benchmarks/dte_whiten.py --sets 1_ALOI,19_landsat --seed 0 \
        --params '{"max_epochs": 100}' --out benchmarks/results/dte-whiten/dev-seed0.json

The split and scaling are those of a ``diffad bench`` cell of the semi-supervised protocol (at most
10,000 rows, StandardScaler on the training part, ``tabular_split``). The standardised rows are then
rotated onto the principal axes of the training part and each axis divided by the square root of its
variance, none below ``--floor`` (default 0.01) times the mean variance (a set with more features than
rows, or collinear features, has axes of no training variance). ``DTECategorical(**params)`` is fitted
on the whitened training rows and scores the whitened test rows; its own standardisation then changes
nothing. AUC-ROC of that, and of k-NN on the standardised and on the whitened rows, one JSON row per set
(a re-run skips the sets already in ``--out``).
"""

from __future__ import annotations

import json
import time

import numpy as np
from dte_diagnosis import run_sets, sets_parser
from sklearn.metrics import roc_auc_score

from diffad.bench.runner import tabular_split
from diffad.data import load_dataset
from diffad.detectors.baselines import KNNDetector
from diffad.detectors.dte import DTECategorical


def whitening(train: np.ndarray, floor: float) -> np.ndarray:
    """(d, d) matrix W such that train @ W has (near) identity covariance; no axis is scaled by more than
    1 / sqrt(floor x the mean variance)."""
    lam, vec = np.linalg.eigh(np.cov(train, rowvar=False))
    lam = np.maximum(lam, floor * max(float(lam.mean()), 1e-12))
    return vec / np.sqrt(lam)


def whitened_row(name: str, data_dir: str, seed: int, params: dict, floor: float) -> dict:
    ds = load_dataset(f"ADBench/{name}", data_dir)
    train, test, y = tabular_split(ds.test, ds.test_labels, "semi-supervised", seed, 10000)
    W = whitening(train, floor)
    t0 = time.perf_counter()
    det = DTECategorical(random_state=seed, **params).fit(train @ W)
    return {
        "set": name,
        "seed": seed,
        "params": params,
        "floor": floor,
        "auc_dte_c_whitened": float(roc_auc_score(y, det.decision_function(test @ W))),
        "fit_s": time.perf_counter() - t0,
        "auc_knn": float(roc_auc_score(y, KNNDetector().fit(train).decision_function(test))),
        "auc_knn_whitened": float(roc_auc_score(y, KNNDetector().fit(train @ W).decision_function(test @ W))),
    }


def main() -> None:
    ap = sets_parser(__doc__.split("\n\n")[0])
    ap.add_argument("--floor", type=float, default=0.01)
    a = ap.parse_args()
    params = json.loads(a.params)
    run_sets(
        a.sets,
        a.out,
        lambda name: whitened_row(name, a.data_dir, a.seed, params, a.floor),
        lambda row: (
            f"{row['set']:20s} DTE-C whitened {row['auc_dte_c_whitened']:.3f}  kNN {row['auc_knn']:.3f}"
            f"  kNN whitened {row['auc_knn_whitened']:.3f}  ({row['fit_s']:.0f} s)"
        ),
    )


if __name__ == "__main__":
    main()
