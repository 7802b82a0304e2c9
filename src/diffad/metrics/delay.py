"""Detection delay."""

from __future__ import annotations

import numpy as np

from ..validation import fail
from ._common import check_preds, segments

__all__ = ["average_detection_delay"]


def average_detection_delay(labels, preds) -> float:
    """ADD: for each true segment, the number of its points before the first detection inside it (the
    segment's length if it is missed); the mean over segments. Lower is better."""
    p = check_preds(preds, len(np.asarray(preds)))
    y = check_preds(labels, len(p))
    starts, ends = segments(y)
    if starts.size == 0:
        raise fail("labels", "at least one anomalous segment", "none", "ADD needs true events.")
    idx = np.where(p > 0, np.arange(p.size), p.size)
    first = np.minimum.reduceat(np.r_[idx, p.size], np.ravel(np.c_[starts, ends + 1]))[::2]
    delay = np.where(first <= ends, first - starts, ends - starts + 1)
    return float(delay.mean())
