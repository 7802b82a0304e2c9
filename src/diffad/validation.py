"""Input checks shared by every public entry point.

Every error says three things: what was expected, what was got, and how to fix it. The checks turn
numpy arrays, pandas objects and torch tensors into ``float64`` numpy arrays; a pandas
``DatetimeIndex`` is returned alongside so callers can put it back on their outputs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any

import numpy as np
import pandas as pd

from .exceptions import DataValidationError, NotFittedError

__all__ = [
    "fail",
    "check_array",
    "check_window",
    "check_n_features",
    "check_labels",
    "check_option",
    "check_is_fitted",
    "check_fraction",
    "check_params",
    "check_index",
    "command_line",
    "param_hint",
    "flag_hint",
]


def fail(what: str, expected: str, got: str, fix: str) -> DataValidationError:
    """Build a :class:`DataValidationError` with the expected / got / fix message shape."""
    return DataValidationError(f"{what}: expected {expected}, got {got}. {fix}")


def _describe(x: Any) -> str:
    shape = getattr(x, "shape", None)
    kind = type(x).__name__
    return f"{kind} of shape {tuple(shape)}" if shape is not None else kind


def check_array(
    X: Any,
    *,
    name: str = "X",
    ndim: int = 2,
    allow_nan: bool = False,
    min_rows: int = 1,
    reject_constant: bool = False,
) -> tuple[np.ndarray, pd.Index | None]:
    """Validate ``X`` and return it as a float64 array plus its pandas index (or ``None``).

    Parameters
    ----------
    X : array-like of shape (n, K) (or any rank ``ndim``)
        numpy array, pandas DataFrame/Series, torch tensor or nested lists.
    name : str
        Name used in messages.
    ndim : int
        Required rank. A 1-D input is accepted for ``ndim=2`` only when it is a pandas Series or a
        plain vector, and becomes one column.
    allow_nan : bool
        NaN is data (unobserved entries) for imputation detectors. Even then a column that is
        entirely NaN is rejected: nothing can be learned from it.
    min_rows : int
        Smallest acceptable number of rows.
    reject_constant : bool
        Reject data in which every column is constant (nothing to model).
    """
    index = None
    if isinstance(X, pd.Series):
        X = X.to_frame()
    if isinstance(X, pd.DataFrame):
        bad = [
            str(c)
            for c in X.columns
            if not (pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c]))
        ]
        if bad:
            raise fail(
                f"{name} columns",
                "numeric columns only",
                f"non-numeric column(s) {bad[:10]}",
                "Drop or encode them, or pass the timestamp as the index (read_series does this for you).",
            )
        if isinstance(X.index, pd.DatetimeIndex):
            index = check_index(X.index, name=name)
        X = X.to_numpy(dtype=np.float64, na_value=np.nan)
    elif type(X).__module__.startswith("torch"):
        X = X.detach().cpu().numpy()
    if np.iscomplexobj(X):
        raise fail(
            name,
            "real numbers",
            f"complex values ({_describe(X)})",
            "Pass the real part, the magnitude (np.abs) or both as separate channels.",
        )
    try:
        arr = np.asarray(X)
        if arr.dtype.kind in "OUSV":
            raise ValueError
        arr = arr.astype(np.float64, copy=False)
    except (ValueError, TypeError):
        raise fail(
            name,
            "numeric data (int, float or bool)",
            f"{_describe(X)} with dtype {getattr(np.asarray(X, dtype=object), 'dtype', '?')}",
            "Convert text columns to numbers, or drop them.",
        ) from None
    if ndim == 2 and arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != ndim:
        raise fail(
            f"{name} rank",
            f"a {ndim}-D array" + (" of shape (n_timepoints, n_channels)" if ndim == 2 else ""),
            f"a {arr.ndim}-D array of shape {arr.shape}",
            "Reshape it, e.g. X.reshape(-1, 1) for one channel." if ndim == 2 else "Reshape it.",
        )
    if arr.shape[0] == 0 or arr.size == 0:
        raise fail(name, "at least one row and one column", f"shape {arr.shape}", "Pass non-empty data.")
    if arr.shape[0] < min_rows:
        raise fail(name, f"at least {min_rows} rows", f"{arr.shape[0]}", "Pass more rows.")
    if np.isinf(arr).any():
        where = np.argwhere(np.isinf(arr))[:3].tolist()
        raise fail(
            name,
            "finite values (NaN allowed only as missing data)",
            f"infinities at {where}",
            "Replace them with NaN or finite values.",
        )
    nan = np.isnan(arr)
    if nan.any():
        if not allow_nan:
            where = np.argwhere(nan)[:3].tolist()
            raise fail(
                name,
                "no missing values for this detector",
                f"{int(nan.sum())} NaN entries (first at {where})",
                "Impute them first (e.g. ImDiffusionDetector().impute(X)) or drop the rows.",
            )
        if arr.ndim == 2:
            all_nan = np.flatnonzero(nan.all(axis=0))
            if all_nan.size:
                raise fail(
                    name,
                    "every channel to have at least one observed value",
                    f"all-NaN channel(s) at column index {all_nan[:10].tolist()}",
                    "Drop those channels.",
                )
    if reject_constant and arr.shape[0] > 1:
        spread = np.nanmax(arr, axis=0) - np.nanmin(arr, axis=0)
        if np.all(spread == 0):
            raise fail(
                name,
                "at least one channel that varies",
                "all channels constant",
                "Check that the right data was loaded.",
            )
    return arr, index


def check_window(n_timepoints: int, window: int, *, name: str = "X") -> None:
    """A series must hold at least one full window."""
    if n_timepoints < window:
        raise fail(
            f"{name} length",
            f"at least window={window} time points",
            f"{n_timepoints}",
            f"Pass a longer series or set a smaller window ({param_hint('window', str(n_timepoints))} or less).",
        )


def check_index(index: pd.DatetimeIndex, *, name: str = "X") -> pd.DatetimeIndex:
    """Timestamps must be known and strictly increasing: a series out of time order, or with one time
    point twice, would be windowed and scored as if it were in order."""
    if index.hasnans:
        where = np.flatnonzero(index.isna())[:3].tolist()
        raise fail(
            f"{name} timestamps",
            "a timestamp on every row",
            f"missing timestamps at rows {where}",
            "Fill or drop those rows.",
        )
    if not index.is_unique:
        dup = index[index.duplicated()]
        raise fail(
            f"{name} timestamps",
            "strictly increasing timestamps",
            f"{len(dup)} repeated timestamp(s), first {dup[0]}",
            "Drop or aggregate the repeated rows (e.g. df.groupby(level=0).mean()).",
        )
    if not index.is_monotonic_increasing:
        step = np.flatnonzero(np.diff(index.asi8) < 0)[0]
        raise fail(
            f"{name} timestamps",
            "strictly increasing timestamps",
            f"{index[step + 1]} after {index[step]} (row {step + 1})",
            "Sort the rows by time first (e.g. df.sort_index()).",
        )
    return index


def check_n_features(n_features: int, n_features_in: int, *, name: str = "X") -> None:
    if n_features != n_features_in:
        raise fail(
            f"{name} channels",
            f"{n_features_in} channel(s), as seen in fit",
            f"{n_features}",
            "Pass data with the same columns, in the same order, as the training data.",
        )


def check_labels(y: Any, n: int, *, name: str = "labels") -> np.ndarray:
    """Labels must be a 0/1 vector with one entry per time point or sample."""
    arr = np.asarray(y.to_numpy() if isinstance(y, pd.Series | pd.DataFrame) else y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise fail(name, "a 1-D vector", f"shape {arr.shape}", "Pass one label per row.")
    if arr.shape[0] != n:
        raise fail(
            f"{name} length",
            f"{n} (one per row of the data)",
            f"{arr.shape[0]}",
            "Align labels with the data.",
        )
    try:
        num = arr.astype(np.float64)
    except (TypeError, ValueError):
        raise fail(
            name, "0/1 values", f"dtype {arr.dtype}", "Encode anomalies as 1 and normal points as 0."
        ) from None
    values = np.unique(num[~np.isnan(num)])
    if np.isnan(num).any() or not np.isin(values, (0.0, 1.0)).all():
        raise fail(
            name,
            "only 0 and 1",
            f"values {values[:10].tolist()}",
            "Encode anomalies as 1 and normal points as 0.",
        )
    return num.astype(np.int8)


def check_option(value: Any, valid: Iterable[Any], *, name: str) -> Any:
    valid = list(valid)
    if value not in valid:
        raise fail(name, f"one of {valid}", repr(value), "Use one of the listed values.")
    return value


def check_fraction(
    value: float, *, name: str, low: float = 0.0, high: float = 1.0, inclusive: bool = False
) -> float:
    ok = (low <= value <= high) if inclusive else (low < value < high)
    if not ok or not np.isfinite(value):
        br = "[]" if inclusive else "()"
        raise fail(name, f"a number in {br[0]}{low}, {high}{br[1]}", repr(value), "Pick a value in range.")
    return float(value)


def check_is_fitted(estimator: Any, attributes: Iterable[str] = ("n_features_in_",)) -> None:
    missing = [a for a in attributes if not hasattr(estimator, a)]
    if missing:
        raise NotFittedError(
            f"{type(estimator).__name__} is not fitted yet: expected fitted attribute(s) {missing}, got none. "
            "Call fit(X) first, or diffad.load(path) a saved model."
        )


# ------------------------------------------------------------------------------ parameter constraints
# Each detector class declares ``_parameter_constraints``: one constraint per constructor parameter
# (scikit-learn's shape; a test checks that every parameter has one). ``fit`` checks them all before any
# work, and ``diffad.load`` checks the parameters of a saved model the same way.
_SURFACE: ContextVar[str] = ContextVar("diffad_surface", default="python")

#: How the command line spells a parameter that it takes as an option of its own.
_CLI_OPTIONS = {
    "timestamp_col": "--timestamp-col",
    "label_col": "--label-col",
    "device": "--device",
    "random_state": "--seed",
}


@contextlib.contextmanager
def command_line() -> Iterator[None]:
    """Inside this block, messages name command-line options (``--set window=50``) instead of Python
    keyword arguments (``window=50``): the command line sets it around each command."""
    token = _SURFACE.set("cli")
    try:
        yield
    finally:
        _SURFACE.reset(token)


def param_hint(name: str, value: str = "...") -> str:
    """How the user sets parameter ``name`` where they are: ``window=50`` in Python, ``--set window=50``
    (or the command's own option, e.g. ``--timestamp-col NAME``) on the command line."""
    if _SURFACE.get() == "cli":
        option = _CLI_OPTIONS.get(name)
        return f"{option} {value}" if option else f"--set {name}={value}"
    return f"{name}={value}"


def flag_hint(name: str) -> str:
    """How the user turns on the boolean ``name`` where they are: ``resume=True`` in Python, ``--resume``
    on the command line."""
    return f"--{name.replace('_', '-')}" if _SURFACE.get() == "cli" else f"{name}=True"


class Constraint:
    """One parameter's accepted values: ``ok(value)`` and a phrase for messages."""

    text = "a valid value"

    def ok(self, value: Any) -> bool:
        raise NotImplementedError

    def __str__(self) -> str:
        return self.text


def _is_int(v: Any) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)


def _is_real(v: Any) -> bool:
    return (_is_int(v) or isinstance(v, float | np.floating)) and bool(np.isfinite(v))


class Integer(Constraint):
    def __init__(self, low: int | None = None, high: int | None = None):
        self.low, self.high = low, high
        bounds = [f">= {low}" if low is not None else "", f"<= {high}" if high is not None else ""]
        self.text = "an integer" + (" " + " and ".join(b for b in bounds if b) if any(bounds) else "")

    def ok(self, v: Any) -> bool:
        return _is_int(v) and (self.low is None or v >= self.low) and (self.high is None or v <= self.high)


class Real(Constraint):
    """A finite number (int or float, not bool) in a range; ``open`` bounds exclude the end."""

    def __init__(
        self,
        low: float | None = None,
        high: float | None = None,
        *,
        low_open: bool = False,
        high_open: bool = False,
    ):
        self.low, self.high, self.low_open, self.high_open = low, high, low_open, high_open
        parts = []
        if low is not None:
            parts.append(f"{'>' if low_open else '>='} {low}")
        if high is not None:
            parts.append(f"{'<' if high_open else '<='} {high}")
        self.text = "a number" + (" " + " and ".join(parts) if parts else "")

    def ok(self, v: Any) -> bool:
        if not _is_real(v):
            return False
        if self.low is not None and (v <= self.low if self.low_open else v < self.low):
            return False
        return not (self.high is not None and (v >= self.high if self.high_open else v > self.high))


class Options(Constraint):
    def __init__(self, *values: Any):
        self.values = values
        self.text = f"one of {list(values)}"

    def ok(self, v: Any) -> bool:
        return any(
            v is x if isinstance(x, bool) or x is None else (type(v) is type(x) and v == x)
            for x in self.values
        )


class Boolean(Options):
    def __init__(self):
        super().__init__(True, False)
        self.text = "True or False"

    def ok(self, v: Any) -> bool:
        return isinstance(v, bool | np.bool_)


class PathLike(Constraint):
    text = "a folder path (str)"

    def ok(self, v: Any) -> bool:
        return isinstance(v, str | os.PathLike) and str(v) != ""


class Text(Constraint):
    text = "a string"

    def ok(self, v: Any) -> bool:
        return isinstance(v, str)


class IntTuple(Constraint):
    def __init__(self, low: int = 1):
        self.low = low
        self.text = f"a non-empty list of integers >= {low}"

    def ok(self, v: Any) -> bool:
        return isinstance(v, list | tuple) and len(v) > 0 and all(_is_int(x) and x >= self.low for x in v)


class AnyOf(Constraint):
    def __init__(self, *options: Constraint):
        self.options = options
        self.text = " or ".join(str(o) for o in options)

    def ok(self, v: Any) -> bool:
        return any(o.ok(v) for o in self.options)


NONE = Options(None)
SEED = Integer(0, 2**32 - 1)
POSITIVE = Integer(1)
FRACTION = Real(0.0, 1.0, low_open=True, high_open=True)
CONTAMINATION = AnyOf(Real(0.0, 0.5, low_open=True, high_open=True), Options("auto"))
THRESHOLD = Options("contamination", "pot", "spot", "dspot")  # diffad.thresholds.THRESHOLD_RULES

#: The parameters every torch detector shares (``validation_fraction`` differs per detector).
TRAINING: dict[str, Constraint] = {
    "lr": Real(0.0, low_open=True),
    "weight_decay": Real(0.0),
    "batch_size": POSITIVE,
    "max_epochs": POSITIVE,
    "patience": Integer(0),
    "device": AnyOf(NONE, Text()),
    "random_state": SEED,
    "verbose": Boolean(),
}


def check_params(estimator: Any, constraints: dict[str, Constraint]) -> None:
    """Raise :class:`DataValidationError` naming the first parameter whose value its constraint
    refuses (what was expected, what was got, how to set it)."""
    for name, constraint in constraints.items():
        value = getattr(estimator, name)
        if not constraint.ok(value):
            raise fail(
                f"{type(estimator).__name__} parameter {name}",
                str(constraint),
                f"{value!r} ({type(value).__name__})",
                f"Set it with {param_hint(name)}, or leave it out for the default.",
            )
