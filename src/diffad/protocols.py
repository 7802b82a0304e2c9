"""Evaluation protocols: the one place where a number that uses the test labels is computed and tagged.

diffad reports two worlds (``../shared/DESIGN.md`` section 4): **honest** metrics, whose thresholds are
fitted without test labels, and the **paper** protocol of the paper being reproduced, every number of
which carries :data:`PAPER_TAG`. For ImDiffusion the paper protocol is its vote: per-step thresholds
fitted on the test errors (as the published code does) and the vote level xi, and on some collections
the last-step ratio r, chosen for the best point-adjusted F1 on the test labels. The bench harness, the
run report and the command line all take it from here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .metrics import average_detection_delay, pa_f1_oracle, pa_precision_recall, range_auc
from .thresholds import ensemble_vote, fit_vote_thresholds, oracle_vote_xi

__all__ = [
    "PAPER_TAG",
    "PA_TAG",
    "PAPER_IMDIFFUSION_RULES",
    "PER_ENTITY_RATIOS",
    "paper_imdiffusion_rule",
    "paper_vote",
    "paper_metrics",
]

PAPER_TAG = "paper-protocol (uses test labels)"
PA_TAG = "point-adjusted (inflated by design)"

# ImDiffusion's published protocol per collection: the per-step error (max or sum over channels) and the
# last-step ratio r, a number or "per-entity" (chosen on the test labels from PER_ENTITY_RATIOS).
PAPER_IMDIFFUSION_RULES: dict[str, tuple[str, float | str]] = {
    "SMD": ("max", "per-entity"),
    "GCP": ("max", "per-entity"),
    "PSM": ("max", 0.02),
    "SMAP": ("sum", 0.02),
    "MSL": ("sum", 0.02),
    "SWaT": ("sum", 0.02),
}
PER_ENTITY_RATIOS = np.round(np.arange(0.0005, 0.0396, 0.001), 4)  # 0.05 % .. 3.95 %


def paper_imdiffusion_rule(dataset: str, default_r: float) -> tuple[str | None, float | str]:
    """(per-step reduce or None for the detector's own, r) of the paper protocol for ``dataset``."""
    return PAPER_IMDIFFUSION_RULES.get(dataset.split("/", 1)[0], (None, default_r))


def paper_vote(labels: np.ndarray, step_errors: np.ndarray, rule_r: float | str) -> dict[str, Any]:
    """ImDiffusion's paper protocol on per-step errors (n_steps, n) of a test series: vote thresholds
    fitted on those test errors (as the published code does), the vote level xi (and r where ``rule_r``
    is "per-entity", from ``PER_ENTITY_RATIOS``) chosen for the best point-adjusted F1 on the test labels."""
    y = np.asarray(labels)
    best: tuple[float, float, int, np.ndarray] | None = None
    for ratio in PER_ENTITY_RATIOS if rule_r == "per-entity" else [float(rule_r)]:
        votes, _ = ensemble_vote(step_errors, fit_vote_thresholds(step_errors, float(ratio)), 0)
        xi, f1 = oracle_vote_xi(y, votes, len(step_errors))
        if best is None or f1 > best[0]:
            best = (f1, float(ratio), xi, votes)
    assert best is not None  # at least one ratio
    f1, ratio, xi, votes = best
    preds = (votes > xi).astype(int)
    precision, recall, _ = pa_precision_recall(y, preds)
    return {
        "PA-F1": f1,
        "xi": xi,
        "r": ratio,
        "ADD": average_detection_delay(y, preds),
        "PA-precision": precision,
        "PA-recall": recall,
    }


def paper_metrics(
    det: Any,
    test: np.ndarray,
    labels: np.ndarray,
    scores: np.ndarray,
    *,
    window: int = 100,
    default_r: float = 0.02,
    dataset: str | None = None,
) -> dict[str, Any]:
    """The published protocol of the paper being reproduced; every number here uses the test labels.

    ImDiffusion (a detector with ``step_errors``): :func:`paper_vote` with the per-step error and r of
    ``dataset``'s rule (:data:`PAPER_IMDIFFUSION_RULES`; others: the detector's own reduce and
    ``default_r``). Other detectors: the best point-adjusted F1 over thresholds. Both with R-AUC-PR.
    """
    y = np.asarray(labels)
    out: dict[str, Any] = {"R-AUC-PR": range_auc(y, scores, window)[1]}
    if hasattr(det, "step_errors"):
        how, rule_r = paper_imdiffusion_rule(dataset or "", default_r)
        out.update(paper_vote(y, det.step_errors(test, reduce=how), rule_r))
        out["reduce"] = how or det.error_reduce
    else:
        out["PA-F1"] = pa_f1_oracle(y, scores)
    return out
