"""Thresholds fitted without test labels.

A threshold turns continuous scores (higher = more anomalous) into 0/1 decisions. Everything here
is fitted on training-side scores only; the best-threshold search on test labels lives in
:mod:`diffad.metrics` under an explicit "oracle" name.
"""

from __future__ import annotations

import numpy as np

from .validation import check_fraction, fail

__all__ = ["contamination_threshold", "apply_threshold"]


def contamination_threshold(scores: np.ndarray, contamination: float) -> float:
    """The ``(1 - contamination)`` quantile of training-side ``scores``.

    On the data it was fitted on, about a ``contamination`` fraction of points lie strictly above it.
    NaN scores are ignored.
    """
    check_fraction(contamination, name="contamination", low=0.0, high=0.5, inclusive=False)
    s = np.asarray(scores, dtype=np.float64).ravel()
    s = s[~np.isnan(s)]
    if s.size == 0:
        raise fail("scores", "at least one non-NaN score", "none", "Check the detector's output.")
    return float(np.quantile(s, 1.0 - contamination, method="higher"))


def apply_threshold(scores: np.ndarray, threshold: float) -> np.ndarray:
    """1 where ``scores > threshold``, else 0 (NaN scores give 0)."""
    s = np.asarray(scores, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return (s > threshold).astype(np.int64)
