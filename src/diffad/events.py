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

__all__ = ["EventRules", "LiveEvents", "find_events", "events_to_json", "event_f1", "GRADES"]

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
        share = attribution[part][on].mean(axis=0) if attribution is not None else None
        rows.append(
            _record(
                i,
                (s, e),
                (idx[s], idx[e], idx[peak_pos]),
                int(on.sum()),
                float(scores[peak_pos]),
                float(scores[part][on].mean()),
                _severity(float(scores[peak_pos]), float(threshold), typical_score),
                _shares(share, channels, rules.top_channels),
                timed,
            )
        )
    return pd.DataFrame(rows, columns=_columns(timed))


def _columns(timed: bool) -> list[str]:
    columns = ["event", "start", "end", "start_pos", "end_pos", "duration"]
    columns += ["duration_s"] if timed else []
    return columns + ["n_flagged", "peak_score", "peak_at", "mean_score", "severity", "grade", "channels"]


def _shares(share: np.ndarray | None, channels: list[str] | None, top: int) -> str:
    """``"name:share;..."`` of the ``top`` channels with the largest positive mean share."""
    if share is None or channels is None or not top:
        return ""
    order = np.argsort(-share, kind="stable")[:top]
    return ";".join(f"{channels[k]}:{share[k]:.3f}" for k in order if share[k] > 0)


def _record(
    number: int,
    positions: tuple[int, int],
    labels: tuple[Any, Any, Any],
    n_flagged: int,
    peak: float,
    mean: float,
    severity: float,
    channels: str,
    timed: bool,
) -> dict[str, Any]:
    """One row of :func:`find_events`: ``positions`` are (start, end), ``labels`` (start, end, peak)."""
    (s, e), (ls, le, lp) = positions, labels
    row: dict[str, Any] = {"event": number, "start": ls, "end": le, "start_pos": s, "end_pos": e}
    row["duration"] = e - s + 1
    if timed:
        row["duration_s"] = float((le - ls).total_seconds())
    row.update(
        {
            "n_flagged": n_flagged,
            "peak_score": peak,
            "peak_at": lp,
            "mean_score": mean,
            "severity": severity,
            "grade": _grade(severity),
            "channels": channels,
        }
    )
    return row


class LiveEvents:
    """:func:`find_events` one point at a time, for a stream: :meth:`push` takes the decisions, scores
    and attribution of the next points and returns the events that opened and closed with them.

    An event **opens** when its span first reaches ``min_duration`` points and **closes** when more
    than ``merge_gap`` unflagged points follow its last flagged point; a closed event is the row
    :func:`find_events` gives for the whole series (shares summed point by point, so equal to the last
    rounding digit). A run that never reaches ``min_duration`` is never opened (it is dropped, as in
    :func:`find_events`).
    """

    def __init__(
        self,
        threshold: float,
        *,
        rules: EventRules | None = None,
        typical_score: float | None = None,
        channels: list[str] | None = None,
    ):
        self.rules = rules or EventRules()
        self.threshold = float(threshold)
        self.typical_score = typical_score
        self.channels = channels
        self.count = 0  # events opened so far (the next one is count + 1)
        self.run: dict[str, Any] | None = None  # the candidate or open event

    def push(
        self,
        start: int,
        flags: Any,
        scores: Any,
        attribution: np.ndarray | None = None,
        labels: Any = None,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Points at positions ``start``, ``start + 1`` ...; ``labels`` their index labels (timestamps
        give times and ``duration_s``; default: the positions). Returns ``(opened, closed)``: event rows
        (:func:`find_events` columns; an opened event as it stands when it opens)."""
        flags = np.asarray(flags).astype(bool).ravel()
        scores = np.asarray(scores, dtype=np.float64).ravel()
        labels = list(range(start, start + len(flags))) if labels is None else list(labels)
        if attribution is not None:
            attribution = np.nan_to_num(np.asarray(attribution, dtype=np.float64), nan=0.0)
        opened: list[dict[str, Any]] = []
        closed: list[dict[str, Any]] = []
        gap = self.rules.merge_gap
        for i, on in enumerate(flags):
            pos = start + i
            run = self.run
            if run is not None and pos - run["last"] - 1 > gap:  # the run ended before this point
                if run["number"]:
                    closed.append(self._row(run))
                self.run = run = None
            if not on:
                continue
            if run is None:
                run = self.run = {
                    "first": pos,
                    "first_label": labels[i],
                    "number": 0,
                    "n": 0,
                    "sum": 0.0,
                    "peak": -np.inf,
                    "peak_label": labels[i],
                    "share": None,
                }
            run["last"], run["last_label"] = pos, labels[i]
            run["n"] += 1
            run["sum"] += float(scores[i])
            if scores[i] > run["peak"]:
                run["peak"], run["peak_label"] = float(scores[i]), labels[i]
            if attribution is not None:
                row = attribution[i]
                run["share"] = row.copy() if run["share"] is None else run["share"] + row
            if not run["number"] and pos - run["first"] + 1 >= self.rules.min_duration:
                self.count += 1
                run["number"] = self.count
                opened.append(self._row(run))
        return opened, closed

    def close(self) -> list[dict[str, Any]]:
        """End of the stream: the open event, closed (``[]`` if none is open)."""
        run, self.run = self.run, None
        return [self._row(run)] if run is not None and run["number"] else []

    def current(self) -> dict[str, Any] | None:
        """The open event as it stands, or None."""
        return self._row(self.run) if self.run is not None and self.run["number"] else None

    def _row(self, run: dict[str, Any]) -> dict[str, Any]:
        share = run["share"] / run["n"] if run["share"] is not None else None
        channels = self.channels or ([f"ch{k}" for k in range(len(share))] if share is not None else None)
        return _record(
            run["number"],
            (run["first"], run["last"]),
            (run["first_label"], run["last_label"], run["peak_label"]),
            run["n"],
            run["peak"],
            run["sum"] / run["n"],
            _severity(run["peak"], self.threshold, self.typical_score),
            _shares(share, channels, self.rules.top_channels),
            isinstance(run["first_label"], pd.Timestamp),
        )


def _plain(v: Any) -> Any:
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if isinstance(v, np.generic):
        return v.item()
    return v


def event_record(row: dict[str, Any]) -> dict[str, Any]:
    """One event row (:func:`find_events`, :class:`LiveEvents`) as JSON-able values: times as ISO 8601
    text, ``channels`` as a list of name and share."""
    item = {k: _plain(v) for k, v in row.items()}
    item["channels"] = [
        {"name": name, "share": float(share)}
        for name, share in (c.rsplit(":", 1) for c in str(row.get("channels", "")).split(";") if c)
    ]
    return item


def events_to_json(events: pd.DataFrame) -> str:
    """The events as a JSON list (:func:`event_record` of each row)."""
    return json.dumps([event_record(rec) for rec in events.to_dict(orient="records")], indent=2)


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
