"""Scalers fitted on training data only.

These are scikit-learn's scalers (they already ignore NaN when fitting and keep constant channels
finite); this module only gives them names and a single validated entry point.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from ..validation import check_option

__all__ = ["make_scaler", "fit_affine", "standard_scale", "SCALERS"]

SCALERS = ("minmax", "standard", "none")


class IdentityScaler:
    """A no-op with the scaler interface, for data that is already scaled."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X

    def fit_transform(self, X, y=None):
        return X

    def inverse_transform(self, X):
        return X


def make_scaler(kind: str = "minmax"):
    """Return an unfitted scaler: ``"minmax"`` (to [0, 1]), ``"standard"`` (zero mean, unit variance) or ``"none"``.

    A constant training channel maps to 0 (its range or deviation is treated as 1), never to NaN.
    """
    check_option(kind, SCALERS, name="scaler")
    if kind == "minmax":
        return MinMaxScaler()
    if kind == "standard":
        return StandardScaler()
    return IdentityScaler()


def fit_affine(kind: str, X) -> tuple[np.ndarray, np.ndarray]:
    """Fit a scaler on training data ``X`` (n, K) and return it as ``(a, b)`` with ``scaled = X * a + b``.

    Two plain arrays are what detectors persist (no pickled scaler objects).
    """
    scaler = make_scaler(kind).fit(X)
    K = np.asarray(X).shape[1]
    if kind == "minmax":
        return scaler.scale_.astype(np.float64), scaler.min_.astype(np.float64)
    if kind == "standard":
        return 1.0 / scaler.scale_, -scaler.mean_ / scaler.scale_
    return np.ones(K), np.zeros(K)


def standard_scale(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (mean, scale) of the finite values of ``X`` (n, K), for ``(X - mean) / scale``: the
    scale is the standard deviation, or 1 where the channel is constant, exactly or up to the rounding of
    its mean (a deviation below 10 machine epsilons of max(1, |mean|), close to StandardScaler's rule), so
    that a value off a constant training channel does not come out at 1e15 or more. A channel with no
    finite value gets a NaN mean and scale 1 (without a warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a channel with no finite value
        mean = np.nanmean(X, axis=0)
        sd = np.nanstd(X, axis=0)
    constant = ~(sd >= 10 * np.finfo(np.float64).eps * np.maximum(1.0, np.abs(mean)))  # NaN sd included
    return mean, np.where(constant, 1.0, sd)
