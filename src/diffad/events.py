"""From point decisions to incidents: flagged points grouped into events, with times, severity and the
channels to blame.

Rules, in this order:

1. **Merge**: runs of flagged points separated by at most ``merge_gap`` unflagged points are one event
   (a detector's decisions flicker inside one incident; one alert, not ten).
2. **Drop**: events spanning fewer than ``min_duration`` points are dropped (isolated one-point
   flags are mostly noise).

An event runs from its first to its last flagged point (inclusive); its ``duration`` counts the points
between, gaps included. Its **severity** is how far its peak score rises above the threshold, in units
of the threshold's own height above the typical training score::

    severity = (peak - threshold) / (threshold - median training score)

so 0 is at the threshold and 1 is as far above it again; ``grade`` names it: ``low`` (< 1),
``medium`` (1-3), ``high`` (>= 3). Where the scale is undefined (threshold at or below the median),
severity is the peak's excess over the threshold, unscaled.

The **channels** of an event are its channels with the largest mean share of the score over the event's
flagged points (a detector's ``explain``, where it has one), with those shares.

The default ``merge_gap`` and ``min_duration`` were chosen by measurement (``docs/events.md``,
"Merging rules"): on the four development SMD machines, the pair with the highest mean composite
F1 (:func:`event_f1`) over the detectors, confirmed on the other ten.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .data.series import runs
from .exceptions import DataValidationError

__all__ = ["EventRules", "find_events", "events_to_json", "event_f1", "GRADES"]

GRADES = ((3.0, "high"), (1.0, "medium"), (-np.inf, "low"))  # (lower bound of severity, grade)


@dataclass(frozen=True)
class EventRules:
    """How flagged points become events (see the module doc)."""

    merge_gap: int = 0  # unflagged points between two runs that still make them one event (measured)
    min_duration: int = 2  # events spanning fewer points are dropped (measured)
    top_channels: int = 3  # channels named per event

    def __post_init__(self) -> None:
        for name in ("merge_gap", "min_duration", "top_channels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise DataValidationError(f"{name}: expected an integer, got {value!r}.")
        if self.merge_gap < 0 or self.min_duration < 1 or self.top_channels < 0:
            raise DataValidationError(
                f"events: expected merge_gap >= 0, min_duration >= 1 and top_channels >= 0, got "
                f"merge_gap={self.merge_gap}, min_duration={self.min_duration}, top_channels={self.top_channels}."
            )


def spans(flags: np.ndarray, rules: EventRules) -> list[tuple[int, int]]:
    """(first, last) positions (inclusive) of the events of a 0/1 vector under ``rules``."""
    starts, ends = runs(flags)
    merged: list[list[int]] = []
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        if merged and s - merged[-1][1] - 1 <= rules.merge_gap:
            merged[-1][1] = e
        else:
            merged.append([s, e])
    return [(s, e) for s, e in merged if e - s + 1 >= rules.min_duration]


def _severity(peak: float, threshold: float, typical: float | None) -> float:
    height = threshold - typical if typical is not None else 0.0
    return float((peak - threshold) / height) if height > 0 else float(peak - threshold)


def _grade(severity: float) -> str:
    return next(name for bound, name in GRADES if severity >= bound)


def find_events(
    flags: Any,
    scores: Any,
    threshold: float,
    *,
    rules: EventRules | None = None,
    index: pd.Index | None = None,
    typical_score: float | None = None,
    attribution: np.ndarray | None = None,
    channels: list[str] | None = None,
) -> pd.DataFrame:
    """The events of one series: one row per event, in time order.

    ``flags`` (n,) 0/1 decisions; ``scores`` (n,) the scores they came from; ``threshold`` on the scores'
    scale; ``index`` the series' index (timestamps give ``start``/``end`` times and a ``duration_s``);
    ``typical_score`` the median training score (the severity scale); ``attribution`` (n, K) each
    channel's share of the score (``explain``), named by ``channels``.

    Columns: ``event`` (1, 2, ...), ``start``, ``end`` (index labels), ``start_pos``, ``end_pos``
    (positions, inclusive), ``duration`` (points), ``duration_s`` (with a time index), ``n_flagged``,
    ``peak_score``, ``peak_at``, ``mean_score``, ``severity``, ``grade``, ``channels`` (``"name:share;..."``).
    """
    rules = rules or EventRules()
    flags = np.asarray(flags).astype(bool).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    n = len(flags)
    if len(scores) != n:
        raise DataValidationError(f"events: expected {n} scores (one per decision), got {len(scores)}.")
    idx = index if index is not None else pd.RangeIndex(n)
    if len(idx) != n:
        raise DataValidationError(f"events: expected an index of {n} labels, got {len(idx)}.")
    if attribution is not None:
        attribution = np.nan_to_num(np.asarray(attribution, dtype=np.float64), nan=0.0)
        if attribution.shape[0] != n:
            raise DataValidationError(
                f"events: expected an attribution with {n} rows, got shape {attribution.shape}."
            )
        channels = channels or [f"ch{k}" for k in range(attribution.shape[1])]
    timed = isinstance(idx, pd.DatetimeIndex)
    rows = []
    for i, (s, e) in enumerate(spans(flags, rules), start=1):
        part = slice(s, e + 1)
        on = flags[part]
        peak_pos = s + int(np.argmax(np.where(on, scores[part], -np.inf)))
        severity = _severity(float(scores[peak_pos]), float(threshold), typical_score)
        row: dict[str, Any] = {
            "event": i,
            "start": idx[s],
            "end": idx[e],
            "start_pos": s,
            "end_pos": e,
            "duration": e - s + 1,
        }
        if timed:
            row["duration_s"] = float((idx[e] - idx[s]).total_seconds())
        row.update(
            {
                "n_flagged": int(on.sum()),
                "peak_score": float(scores[peak_pos]),
                "peak_at": idx[peak_pos],
                "mean_score": float(scores[part][on].mean()),
                "severity": severity,
                "grade": _grade(severity),
                "channels": "",
            }
        )
        if attribution is not None and channels is not None and rules.top_channels:
            share = attribution[part][on].mean(axis=0)
            order = np.argsort(-share, kind="stable")[: rules.top_channels]
            row["channels"] = ";".join(f"{channels[k]}:{share[k]:.3f}" for k in order if share[k] > 0)
        rows.append(row)
    columns = ["event", "start", "end", "start_pos", "end_pos", "duration"]
    columns += ["duration_s"] if timed else []
    columns += ["n_flagged", "peak_score", "peak_at", "mean_score", "severity", "grade", "channels"]
    return pd.DataFrame(rows, columns=columns)


def events_to_json(events: pd.DataFrame) -> str:
    """The events as a JSON list (times as ISO 8601 text; ``channels`` as a list of name and share)."""

    def plain(v: Any) -> Any:
        if isinstance(v, pd.Timestamp):
            return v.isoformat()
        if isinstance(v, np.generic):
            return v.item()
        return v

    out = []
    for rec in events.to_dict(orient="records"):
        item = {k: plain(v) for k, v in rec.items()}
        item["channels"] = [
            {"name": name, "share": float(share)}
            for name, share in (c.rsplit(":", 1) for c in str(rec["channels"]).split(";") if c)
        ]
        out.append(item)
    return json.dumps(out, indent=2)


def event_f1(labels: Any, flags: Any, rules: EventRules) -> dict[str, float]:
    """How well the events of ``flags`` under ``rules`` match the labelled segments of 0/1 ``labels``.

    - ``event_F1``: an event is correct when it overlaps a labelled segment, a segment is found when an
      event overlaps it. Over-merging games it: one event spanning the series scores 1.
    - ``composite_F1`` (Garg et al., 2021): the harmonic mean of the segments' recall (as above) and
      the point precision of the events taken as whole intervals (gaps included), so an event is paid
      for by every point it spans. This is the one the defaults were chosen by.

    Also the number of events and the share of one-point events (before dropping, after merging)."""
    y = np.asarray(labels).astype(bool).ravel()
    found = spans(np.asarray(flags), rules)
    ts, te = runs(y)
    cover = np.concatenate(([0], np.cumsum(y)))  # labelled points before each position
    correct = sum(cover[e + 1] - cover[s] > 0 for s, e in found)
    hit = 0
    for s, e in zip(ts.tolist(), te.tolist(), strict=True):
        hit += any(a <= e and b >= s for a, b in found)
    precision = correct / len(found) if found else 0.0
    recall = hit / len(ts) if len(ts) else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    spanned = sum(e - s + 1 for s, e in found)
    point_precision = sum(cover[e + 1] - cover[s] for s, e in found) / spanned if spanned else 0.0
    composite = 2 * point_precision * recall / (point_precision + recall) if point_precision + recall else 0.0
    merged = spans(np.asarray(flags), EventRules(merge_gap=rules.merge_gap, min_duration=1))
    single = sum(e == s for s, e in merged) / len(merged) if merged else 0.0
    return {
        "event_precision": precision,
        "event_recall": recall,
        "event_F1": f1,
        "interval_precision": float(point_precision),
        "composite_F1": float(composite),
        "events": float(len(found)),
        "one_point_share": single,
    }
