"""Windows over a series and the way back from window outputs to one value per time point.

Vocabulary: a series has shape (n, K) -- n time points, K channels; windows have shape (B, L, K) --
B windows of length L.
"""

from __future__ import annotations

import numpy as np

from ..validation import check_fraction, check_option, check_window, fail

__all__ = ["window_starts", "sliding_windows", "reassemble", "time_split", "runs"]

REASSEMBLY_RULES = ("mean", "central")


def window_starts(n: int, window: int, stride: int) -> np.ndarray:
    """Start indices of windows of length ``window`` every ``stride`` points.

    The last window is aligned to the end of the series, so every time point is covered even when
    ``(n - window)`` is not a multiple of ``stride``.
    """
    check_window(n, window)
    if stride < 1:
        raise fail("stride", "an integer >= 1", repr(stride), "Use stride=1 for every window.")
    starts = np.arange(0, n - window + 1, stride, dtype=np.int64)
    if starts[-1] != n - window:
        starts = np.append(starts, n - window)
    return starts


def sliding_windows(X: np.ndarray, window: int, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``X`` (n, K) into windows (B, L, K); returns ``(windows, starts)``.

    The windows are a read-only strided view (no copy) where possible.
    """
    X = np.asarray(X)
    starts = window_starts(X.shape[0], window, stride)
    view = np.lib.stride_tricks.sliding_window_view(X, window, axis=0)  # (n - L + 1, K, L)
    return np.moveaxis(view[starts], -1, 1), starts  # (B, L, K)


def reassemble(values: np.ndarray, starts: np.ndarray, n: int, rule: str = "mean") -> np.ndarray:
    """Turn per-window outputs back into one value per time point.

    Parameters
    ----------
    values : array of shape (B, L) or (B, L, K)
        One output per position of each window.
    starts : array of shape (B,)
        Window starts, as returned by :func:`window_starts` (sorted, increasing).
    n : int
        Length of the series.
    rule : {"mean", "central"}
        ``"mean"``: average over every window that covers the point and has a value there (NaN
        entries are treated as "no value"; a point with none stays NaN). ``"central"``: take the value
        from the window in which the point lies most centrally (its centre is nearest; ties go to the
        earlier window). With stride L/2 this keeps the central half of each window, plus the outer
        quarters of the first and last windows, as ImDiffusion does for its test windows.
    """
    check_option(rule, REASSEMBLY_RULES, name="rule")
    values = np.asarray(values, dtype=np.float64)
    B, L = values.shape[:2]
    starts = np.asarray(starts, dtype=np.int64)
    if starts.shape != (B,):
        raise fail(
            "starts",
            f"shape ({B},), one start per window",
            f"shape {starts.shape}",
            "Pass the starts returned with the windows.",
        )
    tail = values.shape[2:]
    if rule == "mean":
        idx = (starts[:, None] + np.arange(L)).ravel()  # (B*L,)
        flat = values.reshape(B * L, -1)
        have = ~np.isnan(flat)
        out = np.zeros((n, flat.shape[1]))
        counts = np.zeros((n, flat.shape[1]))
        np.add.at(out, idx, np.where(have, flat, 0.0))
        np.add.at(counts, idx, have)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(counts > 0, out / counts, np.nan)
        return out.reshape((n, *tail))
    centres = starts + (L - 1) / 2.0  # (B,)
    t = np.arange(n)
    right = np.clip(np.searchsorted(centres, t, side="left"), 0, B - 1)
    left = np.clip(right - 1, 0, B - 1)
    pick = np.where(np.abs(t - centres[left]) <= np.abs(t - centres[right]), left, right)  # (n,)
    pos = t - starts[pick]
    if ((pos < 0) | (pos >= L)).any():
        raise fail(
            "windows", "windows that cover every time point", "gaps between windows", "Use stride <= window."
        )
    return values[pick, pos]


def runs(flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and inclusive end index of each run of non-zero values (anomaly segments of a 0/1 vector)."""
    d = np.diff(np.concatenate(([0], (np.asarray(flags) > 0).astype(np.int8), [0])))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1) - 1


def time_split(X: np.ndarray, validation_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Split a series in time: the first part for training, the last ``validation_fraction`` for validation.

    Never split windows at random: overlapping windows on both sides of a random split leak.
    """
    check_fraction(validation_fraction, name="validation_fraction")
    n = len(X)
    cut = n - int(round(n * validation_fraction))
    if cut <= 0 or cut >= n:
        raise fail(
            "validation split",
            "both parts non-empty",
            f"{cut} training and {n - cut} validation points",
            "Pass a longer series or change validation_fraction.",
        )
    return X[:cut], X[cut:]


def windowed_time_split(
    X: np.ndarray, validation_fraction: float, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`time_split` for window models: both parts must hold at least one window."""
    check_window(len(X), window)
    train_part, val_part = time_split(X, validation_fraction)
    if len(val_part) < window or len(train_part) < window:
        raise fail(
            "training series",
            f"at least one window ({window} points) in both the training part and the validation tail "
            f"(validation_fraction={validation_fraction})",
            f"{len(train_part)} and {len(val_part)} points",
            "Pass a longer series, a smaller window or a different validation_fraction.",
        )
    return train_part, val_part
