"""Metrics for time-series anomaly detection, matching TSB-AD (the field's reference) where it defines them.

:func:`evaluate` is the entry point. Honest metrics need no test labels to choose a threshold: the
threshold-free ones (AUC-PR, AUC-ROC, VUS-PR, VUS-ROC, R-AUC-PR, R-AUC-ROC) and the threshold-based
ones computed at predictions you pass in (``preds``, e.g. from a threshold fitted on training data).
Best-over-thresholds values are chosen on the labels being scored: they carry the suffix
``" (oracle)"`` and exist to reproduce published tables. Point-adjusted F1 is always tagged too.

Reference quirks reproduced (so numbers agree with TSB-AD 1.5 to 1e-6):

- ``Standard-F1 (oracle)`` uses F1 = 2PR / (P + R + 1e-5) over scikit-learn's precision-recall curve;
- the F1 oracles other than Standard-F1 scan ``np.linspace(min, max, 100)`` with ``score > t``;
- PA: a segment starting at index 0 and first detected later keeps point 0 undetected;
- event-based F1: a segment that runs to the last point is cut one point short;
- VUS uses 250 thresholds at evenly spaced ranks of the sorted scores with ``score >= t``.

One reference behaviour is *not* reproduced: TSB-AD's ``RangeAUC`` (R-AUC) fails on widened labels
(see :func:`diffad.metrics.range.range_auc`); diffad's R-AUC is the VUS surface at one window.
"""

from __future__ import annotations

from ._common import check_inputs, check_preds
from .affiliation import affiliation_f, affiliation_f_oracle, affiliation_pr
from .delay import average_detection_delay
from .point import (
    auc_pr,
    auc_roc,
    event_f1,
    event_f1_oracle,
    f1_oracle,
    f1_score,
    pa_f1,
    pa_f1_oracle,
    pa_k_f1,
    pa_precision_recall,
)
from .range import range_auc, range_f1, range_f1_oracle, vus

__all__ = [
    "HONEST_KEYS",
    "PAPER_KEYS",
    "affiliation_f",
    "affiliation_f_oracle",
    "affiliation_pr",
    "auc_pr",
    "auc_roc",
    "average_detection_delay",
    "evaluate",
    "event_f1",
    "event_f1_oracle",
    "f1_oracle",
    "f1_score",
    "pa_f1",
    "pa_f1_oracle",
    "pa_k_f1",
    "pa_precision_recall",
    "range_auc",
    "range_f1",
    "range_f1_oracle",
    "reference_metrics",
    "vus",
]

#: Keys of honest metrics, in display order (threshold-based ones appear only when ``preds`` is given).
HONEST_KEYS = (
    "AUC-PR",
    "AUC-ROC",
    "VUS-PR",
    "VUS-ROC",
    "R-AUC-PR",
    "R-AUC-ROC",
    "Standard-F1",
    "Event-based-F1",
    "R-based-F1",
    "Affiliation-F",
    "ADD",
)
#: Keys that are not honest: point adjustment or thresholds chosen on the scored labels.
PAPER_KEYS = (
    "PA-F1",
    "Standard-F1 (oracle)",
    "PA-F1 (oracle)",
    "Event-based-F1 (oracle)",
    "R-based-F1 (oracle)",
    "Affiliation-F (oracle)",
)


def evaluate(labels, scores, preds=None, window: int = 100, oracle: bool = True) -> dict[str, float]:
    """All metrics of a run.

    Parameters
    ----------
    labels : (n,) 0/1
    scores : (n,) float, higher = more anomalous
    preds : (n,) 0/1, optional
        Decisions from a threshold fitted without test labels. Enables ``Standard-F1``,
        ``Event-based-F1``, ``R-based-F1``, ``Affiliation-F``, ``ADD`` and the tagged ``PA-F1``.
    window : int
        Sliding window of VUS (lengths 0..window) and of R-AUC.
    oracle : bool
        Also compute the best-over-thresholds values (keys ending in ``" (oracle)"``).

    Returns
    -------
    dict with the keys of :data:`HONEST_KEYS` (those that apply) followed by those of :data:`PAPER_KEYS`.
    """
    y, s = check_inputs(labels, scores)
    out: dict[str, float] = {"AUC-PR": auc_pr(y, s), "AUC-ROC": auc_roc(y, s)}
    out["VUS-ROC"], out["VUS-PR"] = vus(y, s, window)
    out["R-AUC-ROC"], out["R-AUC-PR"] = range_auc(y, s, window)
    if preds is not None:
        p = check_preds(preds, len(y))
        out["Standard-F1"] = f1_score(y, p)
        out["Event-based-F1"] = event_f1(y, p)
        out["R-based-F1"] = range_f1(y, p)
        out["Affiliation-F"] = affiliation_f(y, p)
        out["ADD"] = average_detection_delay(y, p)
        out["PA-F1"] = pa_f1(y, p)
    if oracle:
        out["Standard-F1 (oracle)"] = f1_oracle(y, s)
        out["PA-F1 (oracle)"] = pa_f1_oracle(y, s)
        out["Event-based-F1 (oracle)"] = event_f1_oracle(y, s)
        out["R-based-F1 (oracle)"] = range_f1_oracle(y, s)
        out["Affiliation-F (oracle)"] = affiliation_f_oracle(y, s)
    order = [k for k in (*HONEST_KEYS, *PAPER_KEYS) if k in out]
    return {k: float(out[k]) for k in order}


def reference_metrics(labels, scores, window: int = 100) -> dict[str, float]:
    """The dictionary TSB-AD 1.5's ``get_metrics(score, labels, slidingWindow=window)`` returns, under
    its names (its F1 variants are the oracle ones). For comparing with published TSB-AD tables."""
    r = evaluate(labels, scores, window=window)
    return {
        "AUC-PR": r["AUC-PR"],
        "AUC-ROC": r["AUC-ROC"],
        "VUS-PR": r["VUS-PR"],
        "VUS-ROC": r["VUS-ROC"],
        "Standard-F1": r["Standard-F1 (oracle)"],
        "PA-F1": r["PA-F1 (oracle)"],
        "Event-based-F1": r["Event-based-F1 (oracle)"],
        "R-based-F1": r["R-based-F1 (oracle)"],
        "Affiliation-F": r["Affiliation-F (oracle)"],
    }
