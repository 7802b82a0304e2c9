"""Simple baselines, measured beside every diffad detector so a reader sees what a number is worth.

They treat each time point (or sample) as one vector of K values, standardised with statistics of
the training data. The neighbour- and forest-based ones keep their (standardised) training data as a
fitted array and rebuild the scikit-learn model from it on load: scikit-learn models are not saved
with pickle, and with the same ``random_state`` the rebuilt model is identical.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import LocalOutlierFactor, NearestNeighbors
from sklearn.svm import OneClassSVM

from ..data.scaling import standard_scale
from ..exceptions import DataValidationError
from ..validation import CONTAMINATION, FRACTION, NONE, POSITIVE, SEED, THRESHOLD, AnyOf, Options, Real
from .base import BaseDetector, register

__all__ = [
    "RandomDetector",
    "PCADetector",
    "IsolationForestDetector",
    "KNNDetector",
    "LOFDetector",
    "OCSVMDetector",
]


class _Standardised(BaseDetector):
    """Shared part: standardise with training mean / std (std 1 for constant channels); NaN -> 0."""

    def _standardise_fit(self, X: np.ndarray) -> np.ndarray:
        self.mean_, self.scale_ = standard_scale(X)
        return self._standardise(X)

    def _standardise(self, X: np.ndarray) -> np.ndarray:
        return np.nan_to_num((X - self.mean_) / self.scale_, nan=0.0)


@register
class RandomDetector(BaseDetector):
    """Uniform random scores: the floor every detector must clear.

    Parameters
    ----------
    contamination : float or "auto", default=0.01
        Fraction of training points above ``threshold_`` (``threshold="contamination"``); ``"auto"``:
        no fraction assumed (``diffad.thresholds.fit_threshold``).
    threshold : {"contamination", "pot", "spot", "dspot"}, default="contamination"
        How ``threshold_`` is fitted on the training scores (``diffad.thresholds.fit_threshold``).
    random_state : int or None
        Seed; the same seed and length give the same scores.
    """

    _parameter_constraints = {
        "contamination": CONTAMINATION,
        "threshold": THRESHOLD,
        "random_state": AnyOf(SEED, NONE),
    }
    _stream = None  # a score depends on the point's position in the call

    def __init__(
        self,
        *,
        contamination: float | str = 0.01,
        threshold: str = "contamination",
        random_state: int | None = 0,
    ):
        self.contamination = contamination
        self.threshold = threshold
        self.random_state = random_state

    def _fit(self, X: np.ndarray) -> None:
        pass

    def _score(self, X: np.ndarray) -> np.ndarray:
        return np.random.default_rng(self.random_state).random(len(X))


@register
class PCADetector(_Standardised):
    """PCA reconstruction error: squared distance of each standardised point to the principal subspace.

    Parameters
    ----------
    n_components : int or float, default=0.9
        Kept components (an int) or the fraction of variance to keep (a float in (0, 1)).
    contamination : float or "auto", default=0.01
        Fraction of training points above ``threshold_`` (``threshold="contamination"``); ``"auto"``:
        no fraction assumed (``diffad.thresholds.fit_threshold``).
    threshold : {"contamination", "pot", "spot", "dspot"}, default="contamination"
        How ``threshold_`` is fitted on the training scores (``diffad.thresholds.fit_threshold``).
    """

    _parameter_constraints = {
        "n_components": AnyOf(POSITIVE, FRACTION),
        "contamination": CONTAMINATION,
        "threshold": THRESHOLD,
    }

    def __init__(
        self,
        *,
        n_components: int | float = 0.9,
        contamination: float | str = 0.01,
        threshold: str = "contamination",
    ):
        self.n_components = n_components
        self.contamination = contamination
        self.threshold = threshold

    def _fit(self, X: np.ndarray) -> None:
        Z = self._standardise_fit(X)
        n_max = min(Z.shape)
        if isinstance(self.n_components, int | np.integer) and self.n_components > n_max:
            raise DataValidationError(
                f"PCADetector parameter n_components: expected at most min(n_rows, n_channels) = {n_max} for this data, "
                f"got {self.n_components}. Use a smaller n_components, or a fraction of variance such as 0.9."
            )
        pca = PCA(n_components=self.n_components, svd_solver="full").fit(Z)
        self.components_ = pca.components_  # (n_components, K)
        self.center_ = pca.mean_

    def _score(self, X: np.ndarray) -> np.ndarray:
        Z = self._standardise(X) - self.center_  # (n, K)
        recon = (Z @ self.components_.T) @ self.components_
        return ((Z - recon) ** 2).sum(axis=1)


class _RefitFromData(_Standardised):
    """Models rebuilt from their stored standardised training data (``train_``) on load."""

    def _fit(self, X: np.ndarray) -> None:
        self.train_ = self._standardise_fit(X)
        self._build()

    def _build(self) -> None:
        raise NotImplementedError

    def _check_neighbours(self, k: int, extra: int = 1) -> None:
        """A neighbour count must leave ``extra`` spare training rows (the point itself)."""
        n = len(self.train_)
        if k + extra > n:
            raise DataValidationError(
                f"{type(self).__name__} parameter n_neighbors: expected at most {n - extra} for {n} training rows, "
                f"got {k}. Use fewer neighbours or more training data."
            )

    def _set_state(self, attrs: dict[str, Any], arrays: dict[str, np.ndarray], weights: Any) -> None:
        super()._set_state(attrs, arrays, weights)
        self._build()

    def _is_train(self, Z: np.ndarray) -> bool:
        return Z.shape == self.train_.shape and np.array_equal(Z, self.train_)

    def _neighbour_distances(self, Z: np.ndarray, k: int) -> np.ndarray:
        """(n, k) distances to the k nearest training points; on the training data itself each point's
        own zero distance is left out. Needs ``self._model`` = NearestNeighbors(n_neighbors=k + 1)."""
        dist, _ = self._model.kneighbors(Z, n_neighbors=k + 1)  # (n, k+1)
        return dist[:, 1:] if self._is_train(Z) else dist[:, :-1]


@register
class IsolationForestDetector(_RefitFromData):
    """scikit-learn's Isolation Forest; score = negated ``score_samples`` (higher = more anomalous).

    Parameters
    ----------
    n_estimators : int, default=100
    max_samples : int or "auto", default="auto"
    contamination : float or "auto", default=0.01
        Fraction of training points above ``threshold_`` (``threshold="contamination"``); ``"auto"``:
        no fraction assumed (``diffad.thresholds.fit_threshold``).
    threshold : {"contamination", "pot", "spot", "dspot"}, default="contamination"
        How ``threshold_`` is fitted on the training scores (``diffad.thresholds.fit_threshold``).
    random_state : int or None, default=0
    """

    _parameter_constraints = {
        "n_estimators": POSITIVE,
        "max_samples": AnyOf(POSITIVE, FRACTION, Options("auto")),
        "contamination": CONTAMINATION,
        "threshold": THRESHOLD,
        "random_state": AnyOf(SEED, NONE),
    }

    @classmethod
    def _test_params(cls) -> dict[str, Any]:
        return dict(n_estimators=20)

    def __init__(
        self,
        *,
        n_estimators: int = 100,
        max_samples: int | str = "auto",
        contamination: float | str = 0.01,
        threshold: str = "contamination",
        random_state: int | None = 0,
    ):
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.contamination = contamination
        self.threshold = threshold
        self.random_state = random_state

    def _build(self) -> None:
        self._model = IsolationForest(
            n_estimators=self.n_estimators, max_samples=self.max_samples, random_state=self.random_state
        ).fit(self.train_)

    def _score(self, X: np.ndarray) -> np.ndarray:
        return -self._model.score_samples(self._standardise(X))


@register
class KNNDetector(_RefitFromData):
    """Distance to the training data: mean (or largest) distance to the ``n_neighbors`` nearest training
    points. On the training data itself each point's own zero distance is left out.

    Parameters
    ----------
    n_neighbors : int, default=5
    method : {"mean", "largest"}, default="mean"
    contamination : float or "auto", default=0.01
        Fraction of training points above ``threshold_`` (``threshold="contamination"``); ``"auto"``:
        no fraction assumed (``diffad.thresholds.fit_threshold``).
    threshold : {"contamination", "pot", "spot", "dspot"}, default="contamination"
        How ``threshold_`` is fitted on the training scores (``diffad.thresholds.fit_threshold``).
    """

    _parameter_constraints = {
        "n_neighbors": POSITIVE,
        "method": Options("mean", "largest"),
        "contamination": CONTAMINATION,
        "threshold": THRESHOLD,
    }

    def __init__(
        self,
        *,
        n_neighbors: int = 5,
        method: str = "mean",
        contamination: float | str = 0.01,
        threshold: str = "contamination",
    ):
        self.n_neighbors = n_neighbors
        self.method = method
        self.contamination = contamination
        self.threshold = threshold

    def _build(self) -> None:
        self._check_neighbours(self.n_neighbors)
        self._model = NearestNeighbors(n_neighbors=self.n_neighbors + 1).fit(self.train_)

    def _score(self, X: np.ndarray) -> np.ndarray:
        dist = self._neighbour_distances(self._standardise(X), self.n_neighbors)
        return dist.mean(axis=1) if self.method == "mean" else dist[:, -1]


@register
class LOFDetector(_RefitFromData):
    """Local Outlier Factor (scikit-learn, novelty mode); score = negated ``score_samples``.

    Parameters
    ----------
    n_neighbors : int, default=20
    contamination : float or "auto", default=0.01
        Fraction of training points above ``threshold_`` (``threshold="contamination"``); ``"auto"``:
        no fraction assumed (``diffad.thresholds.fit_threshold``).
    threshold : {"contamination", "pot", "spot", "dspot"}, default="contamination"
        How ``threshold_`` is fitted on the training scores (``diffad.thresholds.fit_threshold``).
    """

    _parameter_constraints = {"n_neighbors": POSITIVE, "contamination": CONTAMINATION, "threshold": THRESHOLD}

    def __init__(
        self, *, n_neighbors: int = 20, contamination: float | str = 0.01, threshold: str = "contamination"
    ):
        self.n_neighbors = n_neighbors
        self.contamination = contamination
        self.threshold = threshold

    def _build(self) -> None:
        self._check_neighbours(self.n_neighbors)
        self._model = LocalOutlierFactor(n_neighbors=self.n_neighbors, novelty=True).fit(self.train_)

    def _score(self, X: np.ndarray) -> np.ndarray:
        Z = self._standardise(X)
        return -self._model.negative_outlier_factor_ if self._is_train(Z) else -self._model.score_samples(Z)


@register
class OCSVMDetector(_RefitFromData):
    """One-class SVM (scikit-learn, RBF kernel); score = negated ``score_samples``. The defaults are
    PyOD's (nu 0.5, gamma "auto"), as used by ADBench. Training is quadratic in the number of rows.

    Parameters
    ----------
    nu : float, default=0.5
    gamma : float or {"scale", "auto"}, default="auto"
    contamination : float or "auto", default=0.01
        Fraction of training points above ``threshold_`` (``threshold="contamination"``); ``"auto"``:
        no fraction assumed (``diffad.thresholds.fit_threshold``).
    threshold : {"contamination", "pot", "spot", "dspot"}, default="contamination"
        How ``threshold_`` is fitted on the training scores (``diffad.thresholds.fit_threshold``).
    """

    _parameter_constraints = {
        "nu": Real(0.0, 1.0, low_open=True),
        "gamma": AnyOf(Real(0.0, low_open=True), Options("scale", "auto")),
        "contamination": CONTAMINATION,
        "threshold": THRESHOLD,
    }

    def __init__(
        self,
        *,
        nu: float = 0.5,
        gamma: float | str = "auto",
        contamination: float | str = 0.01,
        threshold: str = "contamination",
    ):
        self.nu = nu
        self.gamma = gamma
        self.contamination = contamination
        self.threshold = threshold

    def _build(self) -> None:
        model = OneClassSVM(kernel="rbf", nu=self.nu, gamma=self.gamma)
        model.random_state = (
            0  # libsvm's seed; otherwise drawn from numpy's global stream, which diffad never moves
        )
        self._model = model.fit(self.train_)

    def _score(self, X: np.ndarray) -> np.ndarray:
        return -self._model.score_samples(self._standardise(X))
