"""Diffusion-time estimation for tabular anomaly detection (Livernoche et al., ICLR 2024).

Noising is variance-exploding: x_t = x_0 + sigma_t eps with sigma_t^2 = 1 - alpha_bar_t and betas
linearly spaced from 1e-4 to 0.01. Given the squared distance D from x to the clean data in d
dimensions and a flat prior, the posterior of sigma^2 is InvGamma(alpha = d/2 - 1, beta = D/2).
Anomalies sit far from the data, so they need more diffusion time.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln, softmax

from ..validation import check_option, fail
from .base import register
from .baselines import _RefitFromData

__all__ = ["DTENonParametric", "diffusion_sigmas", "inverse_gamma_logpdf"]


def diffusion_sigmas(n_steps: int = 300, beta_start: float = 1e-4, beta_end: float = 0.01) -> np.ndarray:
    """sigma_t^2 = 1 - alpha_bar_t for t = 1..T, shape (T,)."""
    betas = np.linspace(beta_start, beta_end, n_steps)
    return 1.0 - np.cumprod(1.0 - betas)


def inverse_gamma_logpdf(s: np.ndarray, alpha: float, beta: np.ndarray) -> np.ndarray:
    """log InvGamma(s; alpha, beta) for every (beta_i, s_j) pair: shape (len(beta), len(s))."""
    s = np.asarray(s, dtype=np.float64)[None, :]
    b = np.asarray(beta, dtype=np.float64)[:, None]
    return alpha * np.log(b) - gammaln(alpha) - (alpha + 1.0) * np.log(s) - b / s


@register
class DTENonParametric(_RefitFromData):
    """DTE, non-parametric: the diffusion time implied by the distance to the k nearest training points.

    For each sample, D = mean of the k smallest squared distances to the (standardised) training data;
    the inverse-gamma log density of sigma_t^2 is evaluated on the grid t = 1..T, and the score is the
    most probable t (``score="mode"``) or the posterior mean of t under a flat prior (``"mean"``).
    On the training data each point's own zero distance is left out.

    Parameters
    ----------
    n_neighbors : int, default=5
    n_steps : int, default=300
    beta_start, beta_end : float, default=1e-4, 0.01
    score : {"mode", "mean"}, default="mode"
    contamination : float, default=0.01

    References
    ----------
    Livernoche, Jain, Hezaveh, Ravanbakhsh, "On Diffusion Modeling for Anomaly Detection", ICLR 2024.
    """

    def __init__(self, *, n_neighbors: int = 5, n_steps: int = 300, beta_start: float = 1e-4, beta_end: float = 0.01,
                 score: str = "mode", contamination: float = 0.01):
        self.n_neighbors = n_neighbors
        self.n_steps = n_steps
        self.beta_start = beta_start
        self.beta_end = beta_end
        self.score = score
        self.contamination = contamination

    def _build(self) -> None:
        from sklearn.neighbors import NearestNeighbors

        check_option(self.score, ("mode", "mean"), name="score")
        d = self.train_.shape[1]
        if d < 3:
            raise fail("features", "at least 3 (the inverse gamma needs alpha = d/2 - 1 > 0)", str(d), "Use DTE on data with 3 or more features.")
        self._model = NearestNeighbors(n_neighbors=self.n_neighbors + 1).fit(self.train_)

    def _sq_dist(self, Z: np.ndarray) -> np.ndarray:
        dist = self._neighbour_distances(Z, self.n_neighbors)
        return np.maximum((dist**2).mean(axis=1), 1e-12)

    def _score(self, X: np.ndarray) -> np.ndarray:
        D = self._sq_dist(self._standardise(X))  # (n,)
        sig2 = diffusion_sigmas(self.n_steps, self.beta_start, self.beta_end)  # (T,)
        logp = inverse_gamma_logpdf(sig2, self.train_.shape[1] / 2.0 - 1.0, D / 2.0)  # (n, T)
        t = np.arange(1, self.n_steps + 1, dtype=np.float64)
        if self.score == "mode":
            return t[np.argmax(logp, axis=1)]
        return softmax(logp, axis=1) @ t
