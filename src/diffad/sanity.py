"""Sanity checks of a detection run: what a user should look at before trusting the flags.

Each check returns a :class:`RunWarning` (a code and a sentence) or nothing. :func:`check_run` runs
them all; ``diffad detect`` / ``diffad score`` print them, and ``report.html`` and ``run.json`` carry
them. The rules:

- ``flag-rate``: more than ``FLAG_RATE_MIN`` (20 %) of the test points are flagged, and more than
  ``FLAG_RATE_FACTOR`` (10) times the share of flagged training points: the test data differ from the
  training data, or the threshold sits too low for them. (Labelled anomalies make up 4-13 % of SMD,
  SMAP and MSL and under 1 % of UCR's series; a detector flagging a fifth of a series is rarely right.)
- ``first-epoch``: training ran a single epoch, or its validation loss was best at the first epoch
  and never improved: the model may be undertrained.
- ``flat-score``: the test scores take fewer than two distinct finite values: nothing can be ranked.
- ``event-budget``: more events than the budget (``event_budget``; by default one per 1,000 scored
  points, at least 10): an on-call engineer cannot act on them all; raise the threshold
  (``--threshold pot``, a smaller ``--contamination``) or merge more (``EventRules``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["RunWarning", "check_run", "default_event_budget", "FLAG_RATE_FACTOR", "FLAG_RATE_MIN"]

FLAG_RATE_FACTOR = 10.0
FLAG_RATE_MIN = 0.2


@dataclass(frozen=True)
class RunWarning:
    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def default_event_budget(n_points: int) -> int:
    """One event per 1,000 scored points, at least 10."""
    return max(10, n_points // 1000)


def _flag_rate(detector: Any, preds: np.ndarray) -> RunWarning | None:
    train = getattr(detector, "labels_", None)
    if train is None or len(train) == 0 or len(preds) == 0:
        return None
    train_rate, test_rate = float(np.mean(train)), float(np.mean(preds))
    if test_rate > FLAG_RATE_MIN and test_rate > FLAG_RATE_FACTOR * train_rate:
        return RunWarning(
            "flag-rate",
            f"{100 * test_rate:.1f} % of the test points are flagged against {100 * train_rate:.1f} % of the "
            "training points: the test data differ from the training data, or the threshold is too low for "
            "them (try --threshold pot or a smaller --contamination).",
        )
    return None


def _first_epoch(detector: Any) -> RunWarning | None:
    history = getattr(detector, "history_", None) or {}
    losses = history.get("val_loss") or history.get("train_loss")
    if not losses:
        return None  # not an iteratively trained detector
    if len(losses) == 1:
        why = f" ({history['stopped_by']})" if history.get("stopped_by") else ""
        return RunWarning(
            "first-epoch",
            f"training ran a single epoch{why}: the model may be undertrained (raise max_epochs or time_budget).",
        )
    if history.get("best_epoch") == 0:
        return RunWarning(
            "first-epoch",
            f"the validation loss was best at the first of {len(losses)} epochs and never improved: the model "
            "may be undertrained or the learning rate too high.",
        )
    return None


def _flat_score(scores: np.ndarray) -> RunWarning | None:
    finite = scores[np.isfinite(scores)]
    if np.unique(finite).size < 2:
        return RunWarning(
            "flat-score",
            f"the scores take {np.unique(finite).size} distinct finite value(s): nothing can be ranked (a "
            "constant series, or a detector that did not learn).",
        )
    return None


def _event_budget(n_events: int, budget: int) -> RunWarning | None:
    if n_events > budget:
        return RunWarning(
            "event-budget",
            f"{n_events} events, more than the budget of {budget}: raise the threshold (--threshold pot, a "
            "smaller --contamination) or merge more (diffad.events.EventRules).",
        )
    return None


def check_run(
    detector: Any, scores: Any, preds: Any, n_events: int, event_budget: int | None = None
) -> list[RunWarning]:
    """Every check of the module doc on one run's test scores, decisions and event count."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    p = np.asarray(preds).ravel()
    budget = default_event_budget(len(s)) if event_budget is None else event_budget
    found = (
        _flag_rate(detector, p),
        _first_epoch(detector),
        _flat_score(s),
        _event_budget(n_events, budget),
    )
    return [w for w in found if w is not None]
