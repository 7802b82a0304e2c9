"""The detector contract (scikit-learn mechanics, PyOD orientation).

- ``__init__`` stores keyword-only parameters verbatim (no logic), so ``get_params``/``clone`` work.
- ``fit(X)`` validates, fits, and sets ``n_features_in_``, ``decision_scores_`` (scores of the training
  data), ``threshold_`` (fitted without test labels), ``labels_``, ``history_``, ``device_`` and
  ``fit_seconds_`` (wall seconds of the fit).
- ``decision_function(X)``: one float64 score per time point (series) or sample (tabular);
  **higher = more anomalous**. ``predict(X)``: 0/1 from ``threshold_``.
- pandas input with a ``DatetimeIndex`` gives pandas output with the same index.

Subclasses implement ``_fit(X)`` and ``_score(X)`` on validated float64 arrays, and may override
``_fit_threshold`` and ``_get_state`` / ``_set_state`` (persistence).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
import warnings
from typing import Any, ClassVar, TypeVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from ..events import EventRules, find_events
from ..exceptions import PersistenceError
from ..thresholds import apply_threshold, decide, fit_threshold
from ..validation import (
    Constraint,
    check_array,
    check_is_fitted,
    check_n_features,
    check_params,
    fail,
    flag_hint,
)
from ._envelope import save_model

__all__ = ["BaseDetector", "register", "registry"]

_REGISTRY: dict[str, type[BaseDetector]] = {}


D = TypeVar("D", bound="type[BaseDetector]")


def register(cls: D) -> D:
    """Class decorator: make a detector loadable by name (``diffad.load``) and usable in benchmarks."""
    _REGISTRY[cls.__name__] = cls
    return cls


def registry() -> dict[str, type[BaseDetector]]:
    """Registered detector classes by name."""
    return dict(_REGISTRY)


def _column_names(X: Any) -> list[str] | None:
    """The column names of a DataFrame whose columns are all strings, else None."""
    if isinstance(X, pd.DataFrame) and all(isinstance(c, str) for c in X.columns):
        return [str(c) for c in X.columns]
    return None


def _jsonable(v: Any) -> bool:
    if v is None or isinstance(v, bool | int | float | str):
        return True
    if isinstance(v, list | tuple):
        return all(_jsonable(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _jsonable(x) for k, x in v.items())
    return False


class BaseDetector(BaseEstimator):
    """Base class of every diffad detector. See the module docstring for the contract."""

    #: NaN entries are data (unobserved) for this detector.
    _allow_nan: bool = False
    #: Smallest training length accepted by ``fit``.
    _min_rows: int = 2
    #: Accepted values of each constructor parameter (see ``diffad.validation``); every parameter has one.
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {}
    #: ``fit(X, resume=True)`` continues from a training checkpoint.
    _supports_resume: ClassVar[bool] = False
    #: How :mod:`diffad.stream` scores new points: ``"point"`` (a row's score depends on that row
    #: alone), ``"window"`` (windows on a fixed grid from the series start: the detector implements
    #: ``_stream_grid``, ``_stream_windows`` and ``_stream_points``) or ``None`` (no streaming).
    _stream: ClassVar[str | None] = "point"
    #: ``fit(X, y)`` passes ``y`` (known anomalies) to ``_fit`` as ``labels``.
    _uses_labels: ClassVar[bool] = False
    #: Parameters added with a default that behaves differently from before they existed, with the
    #: value that behaves as before: a saved model or a bench cell that does not name one ran with it.
    _params_before: ClassVar[dict[str, Any]] = {}
    #: Parameters left out of the resume fingerprint: they do not change what an epoch computes
    #: (a resumed fit may train longer with a larger ``max_epochs``, or stop sooner with ``patience``).
    _resume_ignores: tuple[str, ...] = (
        "time_budget",
        "verbose",
        "checkpoint_dir",
        "device",
        "inference_batch_size",
        "max_epochs",
        "patience",
    )

    # ------------------------------------------------------------------ public API
    def fit(self, X: Any, y: Any = None, *, resume: bool = False) -> BaseDetector:
        """Fit on ``X`` of shape (n, K) (unlabelled, assumed mostly normal). Returns ``self``.

        Every parameter is checked first (``_parameter_constraints``), before any work. ``resume=True``
        continues an interrupted fit from its checkpoint, for the detectors that write one.
        """
        self._check_params()
        if resume and not self._supports_resume:
            resumable = sorted(n for n, c in registry().items() if c._supports_resume)
            raise fail(
                "resume",
                f"a detector that writes training checkpoints ({', '.join(resumable)})",
                f"{type(self).__name__}, which trains in one go",
                f"Fit without {flag_hint('resume')}.",
            )
        names = _column_names(X)
        arr, _ = check_array(X, allow_nan=self._allow_nan, min_rows=self._min_rows, reject_constant=True)
        self.n_features_in_ = arr.shape[1]
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.history_: dict[str, Any] = {}
        self.device_ = "cpu"
        fit_params: dict[str, Any] = {}
        if self._supports_resume:
            fit_params["resume"] = resume
        if self._uses_labels:
            fit_params["labels"] = y
        started = time.perf_counter()
        with self._fit_context():
            self._fit(arr, **fit_params)
            self._fit_scores(arr)
        self.fit_seconds_ = round(time.perf_counter() - started, 3)  # training and the training scores
        return self

    def decision_function(self, X: Any) -> np.ndarray | pd.Series:
        """Anomaly score of each row of ``X``; higher = more anomalous."""
        arr, index = self._validate(X)
        return self._wrap(np.asarray(self._score(arr), dtype=np.float64), index, "score")

    def predict(self, X: Any) -> np.ndarray | pd.Series:
        """0/1 decisions (1 = anomaly) from ``threshold_``, which was fitted without test labels."""
        arr, index = self._validate(X)
        return self._wrap(np.asarray(self._decide(arr), dtype=np.int64), index, "label")

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        return self.fit(X).labels_

    def warm_up(self) -> BaseDetector:
        """Do now the one-off work of the first scoring call (ImDiffusion with ``compile=True``:
        compiling the network), so that no later call pays for it; nothing for most detectors."""
        return self

    def save(self, path: Any, *, option: str = "path") -> Any:
        """Save to a folder; reload with ``diffad.load(path)``. An earlier diffad model there is replaced
        in one step; anything else there is refused (:class:`PersistenceError`) and left untouched."""
        if registry().get(type(self).__name__) is not type(self):
            raise PersistenceError(
                f"save: expected a registered diffad detector, got {type(self).__name__}. "
                "Decorate its class with diffad.detectors.base.register."
            )
        return save_model(self, path, option=option)

    # ------------------------------------------------------------------ shared mechanics
    def events(self, X: Any, rules: EventRules | None = None) -> pd.DataFrame:
        """The incidents in ``X``: flagged points grouped into events (``diffad.events``: merging rules,
        severity scale, columns), with the channels to blame where the detector has ``explain``.

        ``rules`` (:class:`~diffad.events.EventRules`) sets ``merge_gap`` and ``min_duration``; a
        DataFrame with a time index gives times and durations in seconds.
        """
        arr, index = self._validate(X)
        explain = getattr(self, "explain", None)
        attribution = explain(arr) if explain is not None else None
        return self.events_from(self._decide(arr), self._score(arr), attribution, index=index, rules=rules)

    def events_from(
        self,
        flags: np.ndarray,
        scores: np.ndarray,
        attribution: np.ndarray | None = None,
        *,
        index: pd.Index | None = None,
        channels: list[str] | None = None,
        rules: EventRules | None = None,
    ) -> pd.DataFrame:
        """:meth:`events` from decisions, scores and attribution already computed (no second scoring
        pass); the threshold and the severity scale are this detector's."""
        check_is_fitted(self, ("n_features_in_", "threshold_"))
        K = int(self.n_features_in_)
        names = channels or list(getattr(self, "feature_names_in_", [f"ch{k}" for k in range(K)]))
        train = np.asarray(getattr(self, "decision_scores_", []), dtype=np.float64)
        return find_events(
            flags,
            scores,
            self._score_threshold(),
            rules=rules,
            index=index,
            typical_score=float(np.median(train)) if train.size else None,
            attribution=attribution,
            channels=names,
        )

    def _score_threshold(self) -> float:
        """Where the decision sits on the score scale (the events' severity is measured from it)."""
        return float(self.threshold_)

    def _validate(self, X: Any) -> tuple[np.ndarray, pd.Index | None]:
        check_is_fitted(self, ("n_features_in_", "threshold_"))
        X = self._match_columns(X)
        arr, index = check_array(X, allow_nan=self._allow_nan, min_rows=1)
        check_n_features(arr.shape[1], self.n_features_in_)
        self._check_scoring_input(arr)
        return arr, index

    @staticmethod
    def _wrap(values: np.ndarray, index: pd.Index | None, name: str) -> np.ndarray | pd.Series:
        return pd.Series(values, index=index, name=name) if index is not None else values

    @classmethod
    def _test_params(cls) -> dict[str, Any]:
        """Cheap parameters for the shared contract battery (``tests/detectors/test_contract.py``): a
        network detector returns a tiny network and a few epochs. A registered class gets the battery."""
        return {}

    def _match_columns(self, X: Any) -> Any:
        """Columns are matched by name when both the training data and ``X`` have names: the same names
        in another order are put in the training order (with a warning); other names are an error.
        Without names on either side, columns are matched by position."""
        fitted, names = getattr(self, "feature_names_in_", None), _column_names(X)
        if fitted is None or names is None or names == list(fitted):
            return X
        if sorted(names) == sorted(fitted) and len(set(names)) == len(names):
            warnings.warn(
                f"{type(self).__name__}: the columns of X are the training columns in another order; "
                "they are matched by name.",
                UserWarning,
                stacklevel=3,
            )
            return X[list(fitted)]
        missing = [c for c in fitted if c not in names]
        extra = [c for c in names if c not in fitted]
        raise fail(
            "X columns",
            f"the {len(fitted)} columns seen in fit, by name",
            f"missing {missing[:10]}, unexpected {extra[:10]}",
            "Pass the same columns as the training data (or a numpy array to match them by position).",
        )

    def _check_params(self) -> None:
        """Check every constructor parameter against ``_parameter_constraints`` (called first in ``fit``
        and by ``diffad.load``). Subclasses with rules across parameters extend it."""
        check_params(self, self._parameter_constraints)

    def _fit_fingerprint(self, X: np.ndarray) -> str:
        """Hash of the training data and of every parameter that changes training: a checkpoint is
        resumed only by the fit that wrote it."""
        return self._digest(X, self._resume_ignores)

    def _digest(self, X: np.ndarray, ignore: tuple[str, ...] = ()) -> str:
        """Hash of ``X`` (shape and bytes) and of the parameters not in ``ignore``."""
        params = {k: v for k, v in self.get_params(deep=False).items() if k not in ignore}
        h = hashlib.blake2b(digest_size=16)
        h.update(repr(X.shape).encode())
        h.update(np.ascontiguousarray(X).tobytes())
        h.update(json.dumps(params, sort_keys=True, default=str).encode())
        return h.hexdigest()

    # ------------------------------------------------------------------ subclass hooks
    def _fit_context(self) -> contextlib.AbstractContextManager:
        """A context the fit runs in (torch detectors: a seeded, forked global random stream)."""
        return contextlib.nullcontext()

    def _fit(self, X: np.ndarray) -> None:
        raise NotImplementedError

    def _score(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _fit_scores(self, X: np.ndarray) -> None:
        """Set ``decision_scores_``, ``threshold_`` and ``labels_`` after ``_fit``. Default: score the
        training data and put the threshold at its ``contamination`` quantile."""
        self.decision_scores_ = np.asarray(self._score(X), dtype=np.float64)
        self.threshold_ = fit_threshold(
            self.decision_scores_,
            getattr(self, "threshold", "contamination"),
            getattr(self, "contamination", 0.01),
        )
        self.labels_ = apply_threshold(self.decision_scores_, self.threshold_)

    def _decide(self, X: np.ndarray) -> np.ndarray:
        """0/1 decisions; default ``score > threshold_`` (streaming thresholds with
        ``threshold="spot" | "dspot"``, calibrated on ``decision_scores_``)."""
        rule = getattr(self, "threshold", "contamination")
        return decide(self._score(X), self.threshold_, rule, getattr(self, "decision_scores_", None))

    def _check_streamable(self) -> None:
        """Raise :class:`ConfigError` if this fitted model cannot be streamed (:mod:`diffad.stream`)."""

    def _stream_context(self) -> int:
        """Windowed streaming: how many final points before the new ones ``_stream_points`` must also be
        given (a score that reads past points' outputs); :mod:`diffad.stream` keeps their outputs."""
        return 0

    def _check_scoring_input(self, X: np.ndarray) -> None:
        """Extra checks on data to score (e.g. at least one window)."""

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any] | None]:
        """Fitted state as (JSON-able attributes, numpy arrays, torch state_dict or None).

        The default collects public attributes ending in ``_``: arrays go to the ``.npz``, JSON-able
        values to the envelope. Subclasses with other state extend this.
        """
        check_is_fitted(self, ("n_features_in_",))
        attrs: dict[str, Any] = {}
        arrays: dict[str, np.ndarray] = {}
        for k, v in vars(self).items():
            if not k.endswith("_") or k.startswith("_"):
                continue
            if isinstance(v, np.ndarray):
                arrays[k] = v
            elif _jsonable(v):
                attrs[k] = v
        return attrs, arrays, None

    def _set_state(
        self, attrs: dict[str, Any], arrays: dict[str, np.ndarray], weights: dict[str, Any] | None
    ) -> None:
        for k, v in {**attrs, **arrays}.items():
            setattr(self, k, v)
