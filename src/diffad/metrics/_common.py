"""Shared helpers: input checks, segments, the reference's threshold grid."""

from __future__ import annotations

import numpy as np

from ..data.series import runs
from ..validation import check_labels, fail

N_THRESHOLDS = 100  # TSB-AD scans np.linspace(min, max, 100) for its oracle F1 variants


def check_inputs(labels, scores, *, need_both_classes: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Labels as int8 0/1 and scores as finite float64 of the same length."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = check_labels(labels, len(s))
    if s.size == 0:
        raise fail("scores", "at least one score", "none", "Pass non-empty scores.")
    if not np.isfinite(s).all():
        bad = int((~np.isfinite(s)).sum())
        raise fail(
            "scores",
            "finite values",
            f"{bad} NaN or infinite score(s)",
            "Replace them (e.g. np.nan_to_num) before evaluating.",
        )
    if need_both_classes and (y.min() == y.max()):
        kind = "no anomalies" if y.max() == 0 else "only anomalies"
        raise fail(
            "labels",
            "at least one anomalous and one normal point",
            kind,
            "Threshold-free metrics are undefined on one class; evaluate on a longer span.",
        )
    return y, s


def check_preds(preds, n: int) -> np.ndarray:
    return check_labels(preds, n, name="preds")


segments = runs  # start and inclusive end of each anomaly segment


def segment_reduce(ufunc, x: np.ndarray, starts: np.ndarray, ends: np.ndarray, pad) -> np.ndarray:
    """``ufunc.reduce`` of ``x`` over each inclusive segment [start, end] (segments sorted, disjoint)."""
    if starts.size == 0:
        return np.zeros(0, dtype=np.asarray(x).dtype)
    return ufunc.reduceat(np.r_[x, pad], np.ravel(np.c_[starts, ends + 1]))[::2]


def threshold_grid(s: np.ndarray, n: int = N_THRESHOLDS) -> np.ndarray:
    return np.linspace(s.min(), s.max(), n)


def f1(tp, fp, fn):
    """Vectorised F1 = 2TP / (2TP + FP + FN), 0 where undefined (as scikit-learn's f1_score)."""
    tp, fp, fn = (np.asarray(v, dtype=np.float64) for v in (tp, fp, fn))
    den = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, 2 * tp / np.where(den > 0, den, 1), 0.0)
