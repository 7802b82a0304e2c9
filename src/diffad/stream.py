"""Streaming: score new points of a series as they arrive, with events opened and closed live.

:class:`StreamScorer` wraps a fitted detector. ``update(points)`` takes the next rows of the series and
returns the points whose score became **final**: the score the batch ``decision_function`` of the whole
series gives them. It keeps only the context it needs.

Which points are final, and when
--------------------------------
- Detectors that score each row alone (``_stream = "point"``: PCA, k-NN, Isolation Forest, LOF, OCSVM,
  DTE): every point is final as soon as it arrives.
- Windowed detectors (``_stream = "window"``: ImDiffusion, the self-distilled MAE at point level) score
  windows of length L every ``stride`` points from the start of the series. A point is final once every
  grid window that covers it is complete, at most ``L - 1`` points after it arrives; its score then
  equals the batch score. **The one difference**: a batch call also scores one extra window aligned to
  the end of the series (so that its last points are covered), which changes the scores of points in
  the last L positions of that call where that window is taken (ImDiffusion: the points nearer its
  centre; MAE: the mean over windows). A stream has no end, so it never scores that window: its
  scores of those points are the ones a longer batch call would give.
- ``provisional()`` gives scores of the points not final yet (the newest ones), from the last L points
  scored as a batch; they are not final and can change.

Random and DDPMTabular draw noise by a point's place in the scored batch and do not stream.

Decisions and thresholds
------------------------
By default the decisions are the detector's own (``threshold_``; ImDiffusion's step vote), and
``threshold="spot"`` / ``"dspot"`` run SPOT / DSPOT online, calibrated on the training scores, with the
same decisions as the batch ``predict`` of a model fitted with that rule. ``recalibrate_every=N``
re-fits the threshold every N final points as the ``1 - contamination`` quantile of the last
``recalibrate_window`` final scores (drift): from then on a point is flagged when its score is above
it. Default: off (the threshold fitted on training data stays).

Retraining in the background
----------------------------
``retrain_every=N`` refits the model every N final points, in a background thread, on the last
``retrain_window`` points received: the points the scorer flagged are left out (for a detector that
takes NaN as missing data, ImDiffusion, they are set to NaN so the windows stay in time order; for the
others they are dropped). While the fit runs, scoring goes on with the current model; the new one takes
over at the first ``update`` after the fit ends, with its own threshold (SPOT / DSPOT re-fitted on its
training scores). From then on the final scores are those of the new model, not of the batch scores of
the first one. ``retrains`` counts the swaps and ``model_points`` says at which point the model in use
took over. Default: off. The retrained model lives in memory: ``dumps`` does not carry it, so a scorer
restored from its state scores with the model it is given.

Events follow :class:`diffad.events.LiveEvents` (the merging rules of :mod:`diffad.events`).
"""

from __future__ import annotations

import pickle
import threading
import warnings
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .data.series import reassemble
from .events import EventRules, LiveEvents
from .exceptions import ConfigError, DataValidationError
from .thresholds import DSPOT, SPOT, apply_threshold
from .validation import check_array, check_is_fitted, check_n_features

__all__ = ["StreamScorer", "StreamResult", "update_many"]

RULES = ("contamination", "pot", "spot", "dspot")


@dataclass
class StreamResult:
    """What one ``update`` made final: points ``start``, ``start + 1`` ... (positions in the series)."""

    start: int
    scores: np.ndarray
    flags: np.ndarray
    labels: list[Any]  # the index label (timestamp) of each final point, or its position
    attribution: np.ndarray | None = None  # (n, K) channel shares, where the detector explains
    opened: list[dict[str, Any]] = field(default_factory=list)  # events that opened (diffad.events rows)
    closed: list[dict[str, Any]] = field(default_factory=list)  # events that closed
    threshold: float = float("nan")  # the score threshold in force after the update

    @property
    def positions(self) -> np.ndarray:
        return np.arange(self.start, self.start + len(self.scores))


class StreamScorer:
    """Scores a series point by point with a fitted ``detector`` (see the module doc).

    Parameters
    ----------
    detector : a fitted diffad detector whose ``_stream`` is "point" or "window".
    rules : EventRules, optional
        Merging rules of the live events (default: :class:`~diffad.events.EventRules`).
    threshold : {None, "contamination", "pot", "spot", "dspot"}
        None keeps the detector's decisions; "spot" / "dspot" decide online by SPOT / DSPOT calibrated
        on the training scores; "contamination" / "pot": the score above ``threshold_``.
    recalibrate_every : int or None, default None
        Re-fit the threshold every this many final points on the recent final scores (off by default).
    recalibrate_window : int, default 10000
        How many recent final scores the re-fit uses.
    retrain_every : int or None, default None
        Refit the model in the background every this many final points (off by default).
    retrain_window : int, default 10000
        How many recent points a refit trains on (the flagged ones left out).
    channels : list of str, optional
        Channel names for the events (default: the training column names).
    """

    def __init__(
        self,
        detector: Any,
        *,
        rules: EventRules | None = None,
        threshold: str | None = None,
        recalibrate_every: int | None = None,
        recalibrate_window: int = 10000,
        retrain_every: int | None = None,
        retrain_window: int = 10000,
        channels: list[str] | None = None,
    ):
        check_is_fitted(detector, ("n_features_in_", "threshold_"))
        kind = getattr(type(detector), "_stream", None)
        if kind not in ("point", "window"):
            raise ConfigError(
                f"stream: {type(detector).__name__} does not stream (its scores depend on where a point sits in "
                "the scored batch). Use a detector with per-point or windowed scores (PCA, KNN, ImDiffusion ...)."
            )
        detector._check_streamable()
        if threshold is not None and threshold not in RULES:
            raise ConfigError(f"stream: threshold: expected None or one of {list(RULES)}, got {threshold!r}.")
        for name, value in (
            ("recalibrate_every", recalibrate_every),
            ("recalibrate_window", recalibrate_window),
            ("retrain_every", retrain_every),
            ("retrain_window", retrain_window),
        ):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"stream: {name}: expected a positive integer, got {value!r}.")
        self.detector = detector
        self.kind = kind
        self.K = int(detector.n_features_in_)
        self.n_seen = 0  # points received
        self.n_final = 0  # points whose score is final
        self.threshold = float(detector._score_threshold())
        self.rule = threshold
        self.contamination = getattr(detector, "contamination", 0.01)
        if not isinstance(self.contamination, float):
            self.contamination = 0.01
        self.recalibrate_every = recalibrate_every
        self.recalibrate_window = recalibrate_window
        self.retrain_every = retrain_every
        self.retrain_window = retrain_window
        self.retrains = 0  # models swapped in
        self.model_points = 0  # the point at which the model in use took over
        self._retrain_since = 0
        self._history: deque[np.ndarray] = deque(maxlen=retrain_window if retrain_every else 0)
        self._retrain_job: Future | None = None
        self._pending_rows = np.empty((0, self.K))  # rows received, not final yet (for the refits)
        self.recalibrated = False
        self._since = 0  # final points since the last re-fit
        self._recent: deque[float] = deque(maxlen=recalibrate_window)
        self._spot: SPOT | None = None
        if threshold is None and getattr(detector, "threshold", None) in ("spot", "dspot"):
            threshold = detector.threshold
        if threshold in ("spot", "dspot"):
            self._spot = (SPOT() if threshold == "spot" else DSPOT()).fit(detector.decision_scores_)
            self.threshold = float(self._spot.threshold_)
        elif threshold in ("contamination", "pot"):
            self.threshold = float(detector.threshold_)
        self._own_flags = threshold is None and self._spot is None
        train = np.asarray(getattr(detector, "decision_scores_", []), dtype=np.float64)
        names = channels or list(getattr(detector, "feature_names_in_", [f"ch{k}" for k in range(self.K)]))
        self.channels = names
        self.events = LiveEvents(
            self.threshold,
            rules=rules,
            typical_score=float(np.nanmedian(train)) if train.size else None,
            channels=names,
        )
        self._labels: list[Any] = []  # labels of the points not final yet
        if kind == "window":
            self.L, self.stride, self.reassembly = detector._stream_grid()
            self._rows = np.empty((0, self.K))  # the last rows received, from position _row0
            self._row0 = 0
            self._next = 0  # the next grid window to score
            self._outputs: dict[int, np.ndarray] = {}  # window number -> outputs (L, C)
        # outputs of the last final points that the next points' scores read (``_stream_context``)
        self._context: np.ndarray | None = None

    # ------------------------------------------------------------------ public API
    def update(self, points: Any, labels: Sequence[Any] | None = None) -> StreamResult:
        """Take the next rows (n, K) of the series (``labels``: their timestamps, optional) and return the
        points whose scores became final."""
        return update_many([(self, points, labels)])[0]

    def provisional(self) -> tuple[int, np.ndarray]:
        """``(start, scores)`` of the points received but not final yet: the last L points scored as a
        batch (they can change). Empty before L points have arrived or when every point is final."""
        start = self.n_final
        if self.kind == "point" or self.n_seen == start or self.n_seen < self.L:
            return start, np.empty(0)
        tail = self._rows[-self.L :]
        scores = np.asarray(self.detector._score(tail), dtype=np.float64)
        return start, scores[len(scores) - (self.n_seen - start) :]

    def close(self) -> list[dict[str, Any]]:
        """End of the stream: the open event, closed."""
        return self.events.close()

    def dumps(self) -> bytes:
        """The scorer's state (context, counters, thresholds, events) without the detector."""
        state = dict(vars(self))
        del state["detector"]
        state["_retrain_job"] = None  # a fit in flight is not state
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def loads(cls, detector: Any, blob: bytes) -> StreamScorer:
        """A scorer from :meth:`dumps` and the detector it was made with."""
        self = cls.__new__(cls)
        vars(self).update(_ADDED_STATE)  # a scorer saved before retraining or the context existed
        vars(self).update(pickle.loads(blob))
        self.detector = detector
        return self

    # ------------------------------------------------------------------ the two halves of an update
    def _check(self, points: Any, labels: Sequence[Any] | None) -> tuple[np.ndarray, list[Any]]:
        det = self.detector
        if isinstance(points, pd.DataFrame):
            points = det._match_columns(points)
            if labels is None and not isinstance(points.index, pd.RangeIndex):
                labels = list(points.index)
        arr, _ = check_array(points, allow_nan=det._allow_nan, min_rows=1)
        check_n_features(arr.shape[1], self.K)
        if labels is not None and len(labels) != len(arr):
            raise DataValidationError(
                f"stream: expected {len(arr)} labels (one per point), got {len(labels)}."
            )
        lab = list(labels) if labels is not None else list(range(self.n_seen, self.n_seen + len(arr)))
        return arr, lab

    def _take(self, arr: np.ndarray, labels: list[Any]) -> tuple[np.ndarray, np.ndarray]:
        """Add rows; return what must be scored now: (inputs, window numbers) — rows for a per-point
        detector, complete grid windows (B, L, K) for a windowed one."""
        self._labels.extend(labels)
        self.n_seen += len(arr)
        if self.retrain_every:
            self._pending_rows = np.concatenate([self._pending_rows, arr])
        if self.kind == "point":
            return arr, np.arange(self.n_seen - len(arr), self.n_seen)
        self._rows = np.concatenate([self._rows, arr])
        L, s = self.L, self.stride
        last = (self.n_seen - L) // s if self.n_seen >= L else -1  # the last complete window
        numbers = np.arange(self._next, last + 1)
        if numbers.size:
            view = np.lib.stride_tricks.sliding_window_view(self._rows, L, axis=0)  # (m - L + 1, K, L)
            windows = np.moveaxis(view[numbers * s - self._row0], -1, 1)  # (B, L, K)
        else:
            windows = np.empty((0, L, self.K))
        self._next = last + 1
        # keep the rows of windows to come and the last L rows (provisional scores)
        keep = max(0, min(self._next * s, self.n_seen - L))
        self._rows = self._rows[keep - self._row0 :]
        self._row0 = keep
        return windows, numbers

    def _give(self, numbers: np.ndarray, outputs: Any) -> StreamResult:
        """Turn what was scored into final points, decisions and events."""
        det = self.detector
        start = self.n_final
        attribution = None
        flags = None
        if self.kind == "point":
            scores = np.asarray(outputs, dtype=np.float64)
            end = self.n_seen
        else:
            for k, out in zip(numbers.tolist(), outputs, strict=True):
                self._outputs[k] = out
            L, s = self.L, self.stride
            last = self._next - 1
            end = min(self.n_seen, (last + 1) * s) if last >= 0 else 0
            if end > start:
                first = max(0, -(-(start - L + 1) // s))
                ks = list(range(first, (end - 1) // s + 1))
                base = first * s
                values = np.stack([self._outputs[k] for k in ks])  # (B, L, C)
                n_local = ks[-1] * s + L - base
                points = reassemble(values, np.array(ks) * s - base, n_local, rule=self.reassembly)
                new = points[start - base : end - base]
                # the last final points' outputs go in front: the score may read earlier points
                seen = new if self._context is None else np.concatenate([self._context, new])
                c = len(seen) - len(new)
                got_scores, flags, attribution = det._stream_points(seen)
                scores = np.asarray(got_scores, dtype=np.float64)[c:]
                flags = None if flags is None else flags[c:]
                attribution = None if attribution is None else attribution[c:]
                keep = det._stream_context()
                self._context = seen[max(0, len(seen) - keep) :] if keep else None
                for k in [k for k in self._outputs if k * s + L <= end]:
                    del self._outputs[k]  # covers no point that is not final
            else:
                scores = np.empty(0)
                attribution = np.empty((0, self.K)) if hasattr(det, "explain") else None
        n = end - start
        labels, self._labels = self._labels[:n], self._labels[n:]
        self.n_final = end
        flags = self._decide(scores, flags)
        opened, closed = self.events.push(start, flags, scores, attribution, labels)
        if self.retrain_every:
            self._remember(start, flags)
        return StreamResult(start, scores, flags, labels, attribution, opened, closed, self.threshold)

    # ------------------------------------------------------------------ retraining in the background
    def _remember(self, start: int, flags: np.ndarray) -> None:
        """Keep the final points (flagged ones as NaN) for the next refit; start one when it is due."""
        rows = self._pending_rows[: len(flags)].copy()
        self._pending_rows = self._pending_rows[len(flags) :]
        rows[np.asarray(flags, dtype=bool)] = np.nan
        self._history.extend(rows)
        self._retrain_since += len(flags)
        if self._retrain_since >= (self.retrain_every or 0) and self._retrain_job is None:
            self._retrain_since = 0
            data = np.asarray(self._history)
            self._retrain_job = _retrain_pool().submit(_refit, self.detector, data, self.n_final)

    def _swap_if_ready(self) -> None:
        """The first update after a background fit ends: the new model takes over."""
        job = self._retrain_job
        if job is None or not job.done():
            return
        self._retrain_job = None
        try:
            new, at = job.result()
        except Exception as exc:  # a failed refit keeps the current model; the next one may succeed
            warnings.warn(
                f"stream: background retraining failed ({type(exc).__name__}: {exc}); the current model stays.",
                stacklevel=3,
            )
            return
        self.detector = new
        self._context = None  # the old model's outputs: the new model's scores start afresh
        self.retrains += 1
        self.model_points = at
        if self._spot is not None:
            self._spot = type(self._spot)().fit(new.decision_scores_)
            self.threshold = float(self._spot.threshold_)
        elif not self.recalibrated:
            self.threshold = float(new._score_threshold())
        self.events.threshold = self.threshold
        train = np.asarray(new.decision_scores_, dtype=np.float64)
        self.events.typical_score = float(np.nanmedian(train)) if train.size else None

    def _decide(self, scores: np.ndarray, own: np.ndarray | None) -> np.ndarray:
        if self._spot is not None:
            out = np.zeros(len(scores), dtype=np.int64)
            ok = np.isfinite(scores)
            if ok.any():
                out[ok] = self._spot.run(scores[ok])[1]
                self.threshold = float(self._spot.threshold_)
            flags = out
        elif own is not None and self._own_flags and not self.recalibrated:
            flags = np.asarray(own, dtype=np.int64)
        else:
            flags = apply_threshold(scores, self.threshold)
        if self.recalibrate_every:
            self._recalibrate(scores)
        return flags

    def _recalibrate(self, scores: np.ndarray) -> None:
        self._recent.extend(scores[np.isfinite(scores)].tolist())
        self._since += len(scores)
        if self.recalibrate_every and self._since >= self.recalibrate_every and len(self._recent) > 1:
            self._since = 0
            self.threshold = float(np.quantile(np.asarray(self._recent), 1.0 - self.contamination))
            self.events.threshold = self.threshold
            self.recalibrated = True


_ADDED_STATE: dict[str, Any] = {
    "retrain_every": None,
    "retrain_window": 10000,
    "retrains": 0,
    "model_points": 0,
    "_retrain_since": 0,
    "_history": deque(maxlen=0),
    "_retrain_job": None,
    "_context": None,
}

_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _retrain_pool() -> ThreadPoolExecutor:
    """One background thread for the refits of every scorer of the process (one fit at a time)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="diffad-retrain")
        return _POOL


def _refit(detector: Any, rows: np.ndarray, at: int) -> tuple[Any, int]:
    """A clone of ``detector`` fitted on ``rows`` (NaN rows: the flagged points)."""
    from sklearn.base import clone

    if not detector._allow_nan:
        rows = rows[~np.isnan(rows).any(axis=1)]
    new = clone(detector)
    if "verbose" in new.get_params():
        new.set_params(verbose=False)
    return new.fit(rows), at


def update_many(items: Sequence[tuple[StreamScorer, Any, Sequence[Any] | None]]) -> list[StreamResult]:
    """``update`` several scorers at once: ``(scorer, points, labels)`` each. Scorers that share one
    detector object are scored in one batch (the service's batching across series); each result equals
    what that scorer's own ``update`` gives. Every input is checked before any scorer changes."""
    checked = [scorer._check(points, labels) for scorer, points, labels in items]
    for scorer, _, _ in items:
        scorer._swap_if_ready()
    taken = [scorer._take(arr, lab) for (scorer, _, _), (arr, lab) in zip(items, checked, strict=True)]
    outputs: list[Any] = [None] * len(items)
    groups: dict[int, list[int]] = {}
    for i, (scorer, _, _) in enumerate(items):
        groups.setdefault(id(scorer.detector), []).append(i)
    for members in groups.values():
        scorer = items[members[0]][0]
        det = scorer.detector
        inputs = [taken[i][0] for i in members]
        sizes = [len(x) for x in inputs]
        if sum(sizes) == 0:
            for i in members:
                outputs[i] = np.empty(0) if scorer.kind == "point" else []
            continue
        joined = np.concatenate(inputs)
        if scorer.kind == "point":
            out = np.asarray(det._score(joined), dtype=np.float64)
        else:
            out = det._stream_windows(joined, np.concatenate([taken[i][1] for i in members]))
        for i, part in zip(members, np.split(out, np.cumsum(sizes)[:-1]), strict=True):
            outputs[i] = part
    return [scorer._give(taken[i][1], outputs[i]) for i, (scorer, _, _) in enumerate(items)]
