"""Point-wise metrics: AUC-ROC, AUC-PR, F1, point-adjusted F1 (PA and PA%K), event-based F1.

Functions ending in ``_oracle`` choose the best threshold **on the labels they score**: they exist to
reproduce published tables and must never be reported as honest results.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from ..validation import fail
from ._common import check_inputs, check_preds, f1, segment_reduce, segments, threshold_grid

__all__ = [
    "auc_roc",
    "auc_pr",
    "f1_score",
    "f1_oracle",
    "pa_f1",
    "pa_f1_oracle",
    "pa_k_f1",
    "pa_precision_recall",
    "event_f1",
    "event_f1_oracle",
]


def auc_roc(labels, scores) -> float:
    y, s = check_inputs(labels, scores)
    return float(roc_auc_score(y, s))


def auc_pr(labels, scores) -> float:
    """Average precision (scikit-learn's ``average_precision_score``), as TSB-AD's AUC-PR."""
    y, s = check_inputs(labels, scores)
    return float(average_precision_score(y, s))


def f1_score(labels, preds) -> float:
    """Point-wise F1 of 0/1 predictions (0 when there is no true positive)."""
    p = check_preds(preds, len(np.asarray(preds)))
    y = check_preds(labels, len(p))
    tp = int((p & y).sum())
    return float(f1(tp, int(p.sum()) - tp, int(y.sum()) - tp))


def f1_oracle(labels, scores) -> float:
    """Best point-wise F1 over every threshold (oracle). As TSB-AD, F1 = 2PR / (P + R + 1e-5)."""
    y, s = check_inputs(labels, scores)
    prec, rec, _ = precision_recall_curve(y, s)
    return float(np.max(2 * prec * rec / (prec + rec + 1e-5)))


def pa_f1(labels, preds) -> float:
    """Point-adjusted F1 (PA): every point of a true segment counts as detected once any point is.

    Known to inflate scores (random predictions can look excellent); always report it tagged.
    Reference quirk (TSB-AD ``_adjust_predicts``): its backward fill stops before index 0, so a segment
    that starts at index 0 and is first detected later keeps point 0 undetected. Reproduced here.
    """
    return pa_k_f1(labels, preds, k=0)


def pa_k_f1(labels, preds, k: float = 20) -> float:
    """PA%K F1 (Kim et al., AAAI 2022): adjust a true segment only when more than ``k`` percent of its
    points are detected. ``k=0`` is PA, ``k=100`` never adjusts (plain point-wise F1)."""
    tp, fp, fn = _pa_k_counts(labels, preds, k)
    return float(f1(tp, fp, fn))


def pa_precision_recall(labels, preds) -> tuple[float, float, float]:
    """Point-adjusted (precision, recall, F1) of 0/1 predictions (paper tables report all three)."""
    tp, fp, fn = _pa_k_counts(labels, preds, 0)
    return tp / max(tp + fp, 1), tp / max(tp + fn, 1), float(f1(tp, fp, fn))


def _pa_k_counts(labels, preds, k: float) -> tuple[int, int, int]:
    """TP, FP, FN after PA%K adjustment."""
    if not 0 <= k <= 100:
        raise fail("k", "a percentage in [0, 100]", repr(k), "Use e.g. k=20.")
    p = check_preds(preds, len(np.asarray(preds)))
    y = check_preds(labels, len(p))
    starts, ends = segments(y)
    hits = segment_reduce(np.add, p.astype(np.int64), starts, ends, 0)  # (S,) detected points per segment
    lengths = ends - starts + 1
    detected = (hits > 0) & (hits / lengths > k / 100.0) & (k < 100)
    tp_seg = np.where(detected, lengths, hits)
    if starts.size and starts[0] == 0 and detected[0] and not p[0]:
        tp_seg[0] -= 1  # reference quirk, see pa_f1
    tp = int(tp_seg.sum())
    return tp, int((p & (y == 0)).sum()), int(y.sum()) - tp


def pa_f1_oracle(labels, scores) -> float:
    """Best PA-F1 over TSB-AD's grid of 100 evenly spaced thresholds (oracle; ``pred = score > t``)."""
    y, s = check_inputs(labels, scores)
    ts = threshold_grid(s)
    starts, ends = segments(y)
    seg_max = segment_reduce(np.maximum, s, starts, ends, -np.inf)  # (S,)
    lengths = ends - starts + 1
    normal = np.sort(s[y == 0])
    fp = normal.size - np.searchsorted(normal, ts, side="right")  # (100,) normal points above t
    detected = seg_max[None, :] > ts[:, None]  # (100, S)
    tp = (detected * lengths).sum(axis=1)
    if starts.size and starts[0] == 0:
        tp = tp - (detected[:, 0] & (s[0] <= ts))  # reference quirk, see pa_f1
    return float(np.max(f1(tp, fp, y.sum() - tp)))


def _reference_events(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Segments as TSB-AD's ``_get_events`` finds them: a segment that runs to the last point ends one
    point early there (``tim - 1``). Reproduced as a documented reference quirk."""
    starts, ends = segments(y)
    if ends.size and ends[-1] == len(y) - 1:
        ends = ends.copy()
        ends[-1] -= 1
    return starts, ends


def _event_f1_from(rec_e, prec_t):
    with np.errstate(invalid="ignore", divide="ignore"):
        return 2 * rec_e * prec_t / (rec_e + prec_t + 1e-15)


def event_f1(labels, preds) -> float:
    """Event-based F1 (TSB-AD): recall over events (an event counts once any of its points is
    predicted), precision over points (not adjusted)."""
    p = check_preds(preds, len(np.asarray(preds)))
    y = check_preds(labels, len(p))
    starts, ends = _reference_events(y)
    if starts.size == 0:
        raise fail("labels", "at least one anomalous segment", "none", "Event-based F1 needs true events.")
    found = (ends >= starts) & (
        segment_reduce(np.add, p.astype(np.int64), starts, np.maximum(ends, starts), 0) > 0
    )
    rec = found.mean()
    prec = (p & y).sum() / p.sum() if p.sum() else 0.0
    return float(_event_f1_from(rec, prec))


def event_f1_oracle(labels, scores) -> float:
    """Best event-based F1 over TSB-AD's 100-threshold grid (oracle)."""
    y, s = check_inputs(labels, scores)
    ts = threshold_grid(s)
    starts, ends = _reference_events(y)
    ev_max = np.where(
        ends >= starts, segment_reduce(np.maximum, s, starts, np.maximum(ends, starts), -np.inf), -np.inf
    )
    rec = (ev_max[None, :] > ts[:, None]).mean(axis=1)
    srt = np.sort(s)
    n_pred = s.size - np.searchsorted(srt, ts, side="right")
    pos = np.sort(s[y == 1])
    tp = pos.size - np.searchsorted(pos, ts, side="right")
    with np.errstate(invalid="ignore", divide="ignore"):
        prec = np.where(n_pred > 0, tp / np.maximum(n_pred, 1), 0.0)
    return float(np.max(_event_f1_from(rec, prec)))
