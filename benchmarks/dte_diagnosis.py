"""What DTE-C's network predicts on ADBench sets, and whether its training covers the test rows.

For each set (semi-supervised protocol of the ``adbench-semi`` preset: a random half of the normal rows
trains, StandardScaler on it, at most 10,000 rows) and one seed, fits ``DTECategorical`` with the given
parameters and reports:

- training: rows, epochs run, the epoch kept, why it stopped, optimiser steps taken;
- coverage: the share of test rows (normal / anomalous) whose implied noise level lies above the
  largest one training draws (``noise_scale_`` included) (implied sigma^2 = mean squared distance to the 5 nearest training rows / d,
  the DTE-NP estimate);
- the posterior over time bins: mean predicted bin probabilities of normal and of anomalous test rows;
- calibration on held-out normal rows (the test part's normal rows, never trained on): they are noised
  to known steps (one draw per row and bin, fixed seed) and the network's bin accuracy and expected
  calibration error (ECE, 10 confidence bins) are measured; and the expected bin of the clean held-out
  normal rows against the clean training rows (how much the network memorised its training rows);
- AUC-ROC of DTE-C (its score, the expected bin, and two other scores of the same posterior: the most
  probable bin, ties broken by the expected bin, and -log p(bin 0)) and of k-NN (mean distance,
  5 neighbours) on the same split.

    python benchmarks/dte_diagnosis.py --data-dir ../shared/data --sets 15_Hepatitis,37_Stamps \\
        --params '{"max_epochs": 100}' --out benchmarks/results/dte-diagnosis/default.json

Rows are written to ``--out`` as each set finishes (a re-run skips the sets already there).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

from diffad.bench.runner import tabular_split
from diffad.data import load_dataset
from diffad.detectors.baselines import KNNDetector
from diffad.detectors.dte import DTECategorical


def _probs(model: DTECategorical, X: np.ndarray) -> np.ndarray:
    Z = torch.tensor(model._standardise(X), dtype=torch.float32, device=model._dev)
    model._net.eval()
    with torch.no_grad():
        return torch.softmax(model._net(Z).double(), dim=1).cpu().numpy()


def _ece(conf: np.ndarray, correct: np.ndarray, n_bins: int = 10) -> float:
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            total += m.mean() * abs(conf[m].mean() - correct[m].mean())
    return float(total)


def diagnose(name: str, data_dir: str, seed: int, params: dict) -> dict:
    ds = load_dataset(f"ADBench/{name}", data_dir)
    train, test, y = tabular_split(ds.test, ds.test_labels, "semi-supervised", seed, 10000)
    t0 = time.perf_counter()
    model = DTECategorical(random_state=seed, **params).fit(train)
    fit_s = time.perf_counter() - t0
    d = train.shape[1]
    sig2 = model._sigmas2() * model.noise_scale_**2  # the noise levels training drew
    nn = NearestNeighbors(n_neighbors=5).fit(train)
    dist, _ = nn.kneighbors(test)
    implied = (dist**2).mean(axis=1) / d
    p = _probs(model, test)
    # calibration on held-out normal rows noised to known steps (each row once per bin, at the bin's middle step)
    held = test[y == 0]
    rng = np.random.default_rng(seed + 7)
    T, K = int(model.n_steps), int(model.n_bins)
    steps = np.array([int((k + 0.5) * T / K) for k in range(K)])
    noised = np.concatenate([held + math.sqrt(sig2[s]) * rng.standard_normal(held.shape) for s in steps])
    true_bin = np.repeat(np.arange(K), len(held))
    pn = _probs(model, noised)
    pred = pn.argmax(axis=1)
    bins = np.arange(K)
    h = model.history_
    n_epoch = max(len(train) - int(round(len(train) * model.validation_fraction)), int(model.min_epoch_draws))
    return {
        "set": name,
        "seed": seed,
        "params": params,
        "n_train": int(len(train)),
        "d": int(d),
        "epochs": len(h["train_loss"]),
        "best_epoch": int(h["best_epoch"]),
        "stopped_by": h.get("stopped_by"),
        "optimiser_steps": len(h["train_loss"]) * math.ceil(n_epoch / int(model.batch_size)),
        "fit_s": round(fit_s, 1),
        "sigma2_max": float(sig2[-1]),
        "beyond_max_normal": float(np.mean(implied[y == 0] > sig2[-1])),
        "beyond_max_anomalous": float(np.mean(implied[y == 1] > sig2[-1])),
        "posterior_normal": p[y == 0].mean(axis=0).round(3).tolist(),
        "posterior_anomalous": p[y == 1].mean(axis=0).round(3).tolist(),
        "heldout_bin_accuracy": float(np.mean(pred == true_bin)),
        "heldout_ece": _ece(pn.max(axis=1), (pred == true_bin).astype(float)),
        "expected_bin_train": float((_probs(model, train) @ bins).mean()),
        "expected_bin_heldout_normal": float((p[y == 0] @ bins).mean()),
        "expected_bin_anomalous": float((p[y == 1] @ bins).mean()),
        "auc_dte_c": float(roc_auc_score(y, p @ bins)),
        # other scores of the same posterior: the most probable bin, and how unlikely "no noise" (bin 0) is
        "auc_by_score": {
            "expected bin": float(roc_auc_score(y, p @ bins)),
            "mode": float(roc_auc_score(y, p.argmax(axis=1) + 1e-9 * (p @ bins))),
            "-log p(bin 0)": float(roc_auc_score(y, -np.log(np.maximum(p[:, 0], 1e-300)))),
        },
        "auc_knn": float(roc_auc_score(y, KNNDetector().fit(train).decision_function(test))),
    }


def sets_parser(description: str) -> argparse.ArgumentParser:
    """The options of the ADBench set-by-set scripts: --data-dir, --sets, --seed, --params, --out."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--data-dir", default="../shared/data")
    ap.add_argument(
        "--sets", required=True, help="comma-separated ADBench names, e.g. 15_Hepatitis,37_Stamps"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--params", default="{}", help="DTECategorical parameters as JSON")
    ap.add_argument("--out", type=Path, required=True)
    return ap


def run_sets(sets: str, out: Path, row_of: Callable[[str], dict], line: Callable[[dict], str]) -> None:
    """``row_of(name)`` for each of the comma-separated ``sets`` not yet in ``out`` (one torch thread),
    each row written to ``out`` as soon as it exists (a re-run resumes) and printed with ``line``."""
    torch.set_num_threads(1)
    rows = json.loads(out.read_text()) if out.is_file() else []
    done = {r["set"] for r in rows}
    for name in sets.split(","):
        if name in done:
            continue
        row = row_of(name)
        rows.append(row)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(rows, indent=1) + "\n")
        print(line(row), flush=True)


def main() -> None:
    a = sets_parser(__doc__.split("\n\n")[0]).parse_args()
    params = json.loads(a.params)
    run_sets(
        a.sets,
        a.out,
        lambda name: diagnose(name, a.data_dir, a.seed, params),
        lambda row: (
            f"{row['set']:20s} AUC DTE-C {row['auc_dte_c']:.3f} kNN {row['auc_knn']:.3f}  steps {row['optimiser_steps']:6d} "
            f"({row['epochs']} ep, {row['stopped_by']})  beyond max: normal {row['beyond_max_normal']:.2f} "
            f"anomalous {row['beyond_max_anomalous']:.2f}  E[bin] train {row['expected_bin_train']:.2f} "
            f"held-out {row['expected_bin_heldout_normal']:.2f} anomalous {row['expected_bin_anomalous']:.2f}  "
            f"held-out acc {row['heldout_bin_accuracy']:.2f} ECE {row['heldout_ece']:.3f}"
        ),
    )


if __name__ == "__main__":
    main()
