"""Root-cause hints against interpretation labels (SMD's ``interpretation_label``): HitRate@P%.

For one labelled anomaly segment with the set G of channels it involves, the channels are ranked by
their attribution summed over the segment; HitRate@P% is the share of G among the top
``floor(P/100 * |G|)`` of that ranking (OmniAnomaly's interpretation score, per segment). The score of a
series is the mean over its labelled segments. P = 100 and 150 are the usual choices.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..data.scaling import standard_scale
from ..validation import fail

__all__ = ["hit_rate", "interpretation_scores", "zscore_attribution"]

Segment = tuple[int, int, Sequence[int]]  # (start, end inclusive, 0-based channels)


def hit_rate(attribution: np.ndarray, segments: Sequence[Segment], percent: float = 100.0) -> float:
    """Mean over ``segments`` of the share of each segment's labelled channels among its top
    ``floor(percent / 100 * |channels|)`` channels by attribution summed over the segment.

    ``attribution`` is (n, K), higher = more to blame; NaN counts as 0. Segments with no labelled
    channel, or outside the series, are left out; NaN when none is left.
    """
    A = np.nan_to_num(np.asarray(attribution, dtype=np.float64), nan=0.0)
    if A.ndim != 2:
        raise fail(
            "attribution",
            "an array of shape (n_timepoints, n_channels)",
            f"shape {A.shape}",
            "Pass one row per time point.",
        )
    n, K = A.shape
    rates = []
    for start, end, channels in segments:
        labelled = {int(c) for c in channels if 0 <= int(c) < K}
        lo, hi = max(int(start), 0), min(int(end), n - 1)
        if not labelled or lo > hi:
            continue
        total = A[lo : hi + 1].sum(axis=0)  # (K,)
        top = np.argsort(-total, kind="stable")[: int(np.floor(percent / 100.0 * len(labelled)))]
        rates.append(len(labelled.intersection(top.tolist())) / len(labelled))
    return float(np.mean(rates)) if rates else float("nan")


def interpretation_scores(attribution: np.ndarray, segments: Sequence[Segment]) -> dict[str, float]:
    """``{"HitRate@100%": ..., "HitRate@150%": ...}`` of an attribution (n, K)."""
    return {f"HitRate@{p}%": hit_rate(attribution, segments, p) for p in (100, 150)}


def zscore_attribution(train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """The simple baseline: each test entry's absolute z-score against the training mean and standard
    deviation of its channel (a constant channel gets deviation 1), shape (n, K)."""
    mean, scale = standard_scale(train)
    return np.abs((np.asarray(test, dtype=np.float64) - mean) / scale)
