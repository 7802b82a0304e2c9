"""Diffusion-time estimation for tabular anomaly detection (Livernoche et al., ICLR 2024).

Noising is variance-exploding: x_t = x_0 + sigma_t eps with sigma_t^2 = 1 - alpha_bar_t and betas
linearly spaced from 1e-4 to 0.01. Given the squared distance D from x to the clean data in d
dimensions and a flat prior, the posterior of sigma^2 is InvGamma(alpha = d/2 - 1, beta = D/2).
Anomalies sit far from the data, so they need more diffusion time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import gammaln, softmax
from torch import nn

from ..diffusion import DDPMScheduler, make_betas
from ..nn.layers import sinusoidal
from ..training import FitSettings, chunked_mean, fit_loop, resolve_device
from ..validation import (
    CONTAMINATION,
    POSITIVE,
    THRESHOLD,
    TRAINING,
    Boolean,
    Integer,
    IntTuple,
    Options,
    Real,
    fail,
)
from ._torch import TorchDetector
from .base import register
from .baselines import _RefitFromData, _Standardised

__all__ = [
    "DTENonParametric",
    "DTECategorical",
    "DTEInverseGamma",
    "DDPMTabular",
    "diffusion_sigmas",
    "inverse_gamma_logpdf",
]


def diffusion_sigmas(n_steps: int = 300, beta_start: float = 1e-4, beta_end: float = 0.01) -> np.ndarray:
    """sigma_t^2 = 1 - alpha_bar_t for t = 1..T, shape (T,), of the linear schedule (``diffad.diffusion``)."""
    return 1.0 - np.cumprod(1.0 - make_betas(n_steps, beta_start, beta_end, "linear"))


def inverse_gamma_logpdf(s: np.ndarray, alpha: float, beta: np.ndarray) -> np.ndarray:
    """log InvGamma(s; alpha, beta) for every (beta_i, s_j) pair: shape (len(beta), len(s))."""
    s = np.asarray(s, dtype=np.float64)[None, :]
    b = np.asarray(beta, dtype=np.float64)[:, None]
    return alpha * np.log(b) - gammaln(alpha) - (alpha + 1.0) * np.log(s) - b / s


_SCHEDULE = {
    "n_steps": POSITIVE,
    "beta_start": Real(0.0, 1.0, low_open=True, high_open=True),
    "beta_end": Real(0.0, 1.0, low_open=True, high_open=True),
}
_NET = {
    **_SCHEDULE,
    **TRAINING,
    "hidden": IntTuple(1),
    "dropout": Real(0.0, 1.0, high_open=True),
    "validation_fraction": Real(0.0, 0.5),
    "min_epoch_draws": Integer(0),
    "contamination": CONTAMINATION,
    "threshold": THRESHOLD,
}
_DTE_NET = {
    **_NET,
    "neighbour_scale": Real(0.0),
    "schedule": Options("linear", "geometric"),
    "sigma_min": Real(0.0, low_open=True),
    "sigma_max": Real(0.0, low_open=True),
    "n_networks": POSITIVE,
    "time_power": Real(0.0, low_open=True),
    "fourier_features": Integer(0),
    "fourier_scale": Real(0.0, low_open=True),
    "fourier_length": Options("noise", "spacing"),
}


def _check_alpha(d: int) -> None:
    if d < 3:
        raise fail(
            "features",
            "at least 3 (the inverse gamma needs alpha = d/2 - 1 > 0)",
            str(d),
            "Use DTE on data with 3 or more features.",
        )


@register
class DTENonParametric(_RefitFromData):
    """DTE, non-parametric: the diffusion time implied by the distance to the k nearest training points.

    For each sample, D = mean of the k smallest squared distances to the (standardised) training data;
    the inverse-gamma log density of sigma_t^2 is evaluated on the grid t = 1..T, and the score is the
    most probable t (``score="mode"``) or the posterior mean of t under a flat prior (``"mean"``).
    On the training data each point's own zero distance is left out.

    The default is the posterior mean, by measurement: the mode is capped at T, so points far from
    the data tie at t = T; that cost it average rank (3.77 against 3.00 over the 35 ADBench sets,
    semi-supervised, ``diffad bench --preset adbench-semi``) and put the contamination threshold on
    the tie, so ``predict`` flagged nothing on many sets. Either score orders points by their
    k-nearest-neighbour distance (the mean is a smooth increasing function of it, the mode a capped
    one), so DTE-NP ranks as a k-NN detector on the mean *squared* distance does.

    Parameters
    ----------
    n_neighbors : int, default=5
    n_steps : int, default=300
    beta_start, beta_end : float, default=1e-4, 0.01
    score : {"mode", "mean"}, default="mean"
    contamination : float or "auto", default=0.01
        Fraction of training points above ``threshold_`` (``threshold="contamination"``); ``"auto"``:
        no fraction assumed (``diffad.thresholds.fit_threshold``).
    threshold : {"contamination", "pot", "spot", "dspot"}, default="contamination"
        How ``threshold_`` is fitted on the training scores (``diffad.thresholds.fit_threshold``).

    References
    ----------
    Livernoche, Jain, Hezaveh, Ravanbakhsh, "On Diffusion Modeling for Anomaly Detection", ICLR 2024.
    """

    _parameter_constraints = {
        "n_neighbors": POSITIVE,
        **_SCHEDULE,
        "score": Options("mode", "mean"),
        "contamination": CONTAMINATION,
        "threshold": THRESHOLD,
    }

    def __init__(
        self,
        *,
        n_neighbors: int = 5,
        n_steps: int = 300,
        beta_start: float = 1e-4,
        beta_end: float = 0.01,
        score: str = "mean",
        contamination: float | str = 0.01,
        threshold: str = "contamination",
    ):
        self.n_neighbors = n_neighbors
        self.n_steps = n_steps
        self.beta_start = beta_start
        self.beta_end = beta_end
        self.score = score
        self.contamination = contamination
        self.threshold = threshold

    def _build(self) -> None:
        from sklearn.neighbors import NearestNeighbors

        _check_alpha(self.train_.shape[1])
        self._check_neighbours(self.n_neighbors)
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


# ---------------------------------------------------------------------------------- network versions
class _MLP(nn.Module):
    """Fully connected network: Linear -> ReLU -> Dropout per hidden layer, then a linear head."""

    def __init__(self, d_in: int, hidden: tuple[int, ...], d_out: int, dropout: float):
        super().__init__()
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(d_in, h), nn.ReLU(), nn.Dropout(dropout)]
            d_in = h
        layers.append(nn.Linear(d_in, d_out))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class _FourierFeatures(nn.Module):
    """x -> [x, sin(x B^T), cos(x B^T)] with fixed random frequencies B (k, d), kept in the state_dict."""

    B: torch.Tensor

    def __init__(self, B: torch.Tensor):
        super().__init__()
        self.register_buffer("B", B)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = x @ self.B.T
        return torch.cat([x, torch.sin(p), torch.cos(p)], dim=-1)


class _MLPEnsemble(nn.Module):
    """Networks of one shape, each with its own weights: input (k, n, d), one batch per member, or
    (n, d), the same rows to every member; output (k, n, d_out)."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return torch.stack([m(x) for m in self.members])
        return torch.stack([m(xi) for m, xi in zip(self.members, x, strict=True)])


class _TabularNet(_Standardised, TorchDetector):
    """Shared part of the torch tabular detectors: standardise, hold out a random validation part for
    early stopping, train with :func:`diffad.training.fit_loop`, score in batches, save the weights.

    Subclasses define ``_out_dim``, ``_in_dim(d)``, ``_loss(x0, gen)`` (a scalar loss of a clean batch,
    drawing its noise from ``gen``) and ``_score_batch(x)``.
    """

    _min_rows = 10

    def _check(self, d: int) -> None:
        """Checks that need the data (the parameters alone are checked by ``_parameter_constraints``)."""

    def _prepare(self, Z: np.ndarray) -> None:
        """Fitted settings that need the standardised training rows (before the network is built)."""

    def _build(self, d: int, dev: torch.device) -> None:
        self._net = self._network(d).to(dev)
        self._dev = dev

    def _network(self, d: int) -> nn.Module:
        return _MLP(self._in_dim(d), tuple(self.hidden), self._out_dim(d), self.dropout)

    def _in_dim(self, d: int) -> int:
        return d

    def _fit(self, X: np.ndarray) -> None:
        Z = self._standardise_fit(X)
        n, d = Z.shape
        self._check(d)
        self._prepare(Z)
        dev = resolve_device(self.device)
        self.device_ = str(dev)
        self._build(d, dev)
        rng = np.random.default_rng(self.random_state)
        n_val = int(round(n * self.validation_fraction))
        order = rng.permutation(n)
        Zt = torch.tensor(Z, dtype=torch.float32, device=dev)
        tr, va = Zt[order[n_val:]], Zt[order[:n_val]]
        gen = torch.Generator(device=dev).manual_seed(self.random_state)
        vseed = self.random_state + 1

        n_tr = len(tr)

        def train_loss(idx: np.ndarray) -> torch.Tensor:
            return self._loss(tr[idx % n_tr], gen)

        # the held-out rows repeated to at least 2048 draws, with the same noise every epoch: a deterministic
        # early-stopping signal that small sets do not make too noisy to use
        va = va.repeat(-(-2048 // n_val), 1) if n_val else va

        def val_loss() -> float:
            if n_val == 0:
                return float("nan")
            vgen = torch.Generator(device=dev).manual_seed(vseed)
            return chunked_mean(lambda s: self._loss(va[s], vgen), len(va), 4096)

        settings = FitSettings(
            lr=self.lr,
            weight_decay=self.weight_decay,
            batch_size=self.batch_size,
            max_epochs=self.max_epochs,
            patience=self.patience if n_val else self.max_epochs,
            verbose=self.verbose,
            desc=f"{type(self).__name__} fit",
        )
        # an epoch is at least min_epoch_draws noised draws: rows are repeated (each draw with its own time
        # and noise), so that a small set gets as many optimiser steps per epoch as a large one
        n_epoch = max(n_tr, int(self.min_epoch_draws))
        history, best = fit_loop(self._net, train_loss, val_loss, n_epoch, settings, rng, (gen,))
        self.history_ = {**history, "best_epoch": best}

    def _score(self, X: np.ndarray) -> np.ndarray:
        Z = torch.tensor(self._standardise(X), dtype=torch.float32, device=self._dev)
        self._net.eval()
        with torch.no_grad():
            return np.concatenate(
                [self._score_batch(Z[i : i + 4096]).double().cpu().numpy() for i in range(0, len(Z), 4096)]
            )


def _neighbour_spread(Z: np.ndarray, seed: int, k: int = 5, max_rows: int = 2000) -> float:
    """Median over training rows (at most ``max_rows``, drawn with ``seed``) of the mean squared distance
    to their k nearest other training rows, per feature: the noise level sigma^2 at which a training row
    sits from the rest, as DTE-NP estimates it."""
    from sklearn.neighbors import NearestNeighbors

    rows = Z
    if len(Z) > max_rows:
        rows = Z[np.random.default_rng(seed).choice(len(Z), max_rows, replace=False)]
    k = min(k, len(Z) - 1)
    dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(Z).kneighbors(rows)
    return float(np.median((dist[:, 1:] ** 2).mean(axis=1)) / Z.shape[1])


class _DTENet(_TabularNet):
    """DTE's networks: clean training points are noised to a uniformly drawn step t of the
    variance-exploding process x_t = x_0 + sigma_t eps; the network sees x_t only."""

    # before these existed, each row was drawn once an epoch and the schedule's noise was unscaled
    _params_before = {"min_epoch_draws": 0, "neighbour_scale": 0.0}

    def _check(self, d: int) -> None:
        super()._check(d)
        _check_alpha(d)
        if self.schedule == "geometric" and not self.sigma_min < self.sigma_max:
            raise fail(
                "sigma_min, sigma_max",
                "sigma_min < sigma_max",
                f"{self.sigma_min}, {self.sigma_max}",
                "Use the defaults 0.01 and 10.",
            )

    def _prepare(self, Z: np.ndarray) -> None:
        self.noise_scale_ = 1.0
        spread = None
        if self.neighbour_scale > 0:
            spread = _neighbour_spread(Z, self.random_state)
            self.noise_scale_ = max(1.0, float(np.sqrt(spread / self.neighbour_scale)))
        if self.fourier_features > 0:
            d = Z.shape[1]
            if self.fourier_length == "spacing":  # root mean squared distance to the 5 nearest other rows
                spread = _neighbour_spread(Z, self.random_state) if spread is None else spread
                length = np.sqrt(max(spread, 1e-12) * d)
            else:  # how far the noise moves a row at the last step of the first of 7 bins (or n_bins)
                last = -(-int(self.n_steps) // int(getattr(self, "n_bins", 7))) - 1
                length = np.sqrt(self._sigmas2()[last] * d) * self.noise_scale_
            self.fourier_length_ = float(self.fourier_scale * length)

    def _noised(self, x0: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """x_t and t for a clean batch: t of shape ``x0.shape[:-1]`` (one step per row and network)."""
        x0 = self._members(x0)
        if self.time_power == 1:
            t = torch.randint(0, self.n_steps, x0.shape[:-1], generator=gen, device=x0.device)
        else:  # t = floor(T u^p): p > 1 draws the small steps more often
            u = torch.rand(x0.shape[:-1], generator=gen, device=x0.device)
            t = (self.n_steps * u**self.time_power).long().clamp_(max=self.n_steps - 1)
        sig2 = self._sig2[t]
        eps = torch.randn(x0.shape, generator=gen, device=x0.device)
        return x0 + (self.noise_scale_ * sig2.sqrt())[..., None] * eps, t

    def _sigmas2(self) -> np.ndarray:
        """sigma_t^2 for t = 1..T: the paper's linear-beta schedule, or sigma geometric from
        ``sigma_min`` to ``sigma_max`` (``schedule="geometric"``)."""
        if self.schedule == "geometric":
            return np.geomspace(self.sigma_min, self.sigma_max, int(self.n_steps)) ** 2
        return diffusion_sigmas(self.n_steps, self.beta_start, self.beta_end)

    def _in_dim(self, d: int) -> int:
        return d + 2 * int(self.fourier_features)

    def _network(self, d: int) -> nn.Module:
        mlp = super()._network  # (super() does not reach into a comprehension)

        def one() -> nn.Module:
            if not self.fourier_features:
                return mlp(d)
            # frequencies ~ N(0, I / length^2): the features' kernel is Gaussian with that length scale
            gen = torch.Generator().manual_seed(int(self.random_state))
            B = torch.randn(int(self.fourier_features), d, generator=gen) / self.fourier_length_
            return nn.Sequential(_FourierFeatures(B), mlp(d))

        return _MLPEnsemble([one() for _ in range(int(self.n_networks))]) if self.n_networks > 1 else one()

    def _build(self, d: int, dev: torch.device) -> None:
        super()._build(d, dev)
        self._sig2 = torch.tensor(self._sigmas2(), dtype=torch.float32, device=dev)

    def _members(self, x0: torch.Tensor) -> torch.Tensor:
        """A clean batch as the network trains on it: (n, d), or (k, n, d) for an ensemble of k networks,
        each of which then draws its own steps and noise for the same rows."""
        return x0.expand(int(self.n_networks), *x0.shape) if self.n_networks > 1 else x0

    @staticmethod
    def _network_sum(losses: torch.Tensor) -> torch.Tensor:
        """Per-draw losses, (n,) or (k, n) for k networks, to the sum over the networks of each one's mean:
        each network then gets the gradient it would get trained alone. (A mean over all k x n draws
        divides every network's gradient by k, which under Adam leaves the weight decay k times as
        strong.)"""
        return losses.mean(dim=-1).sum()

    def _score_batch(self, x: torch.Tensor) -> torch.Tensor:
        s = self._member_scores(x)
        return s.mean(dim=0) if self.n_networks > 1 else s


_NOISE_DOC = """
    schedule : {"linear", "geometric"}, default="linear"
        Noise levels of the T steps: ``"linear"`` is the paper's, sigma_t^2 = 1 - alpha_bar_t of linear
        betas from ``beta_start`` to ``beta_end`` (sigma at most 0.93 with the defaults);
        ``"geometric"`` spaces sigma geometrically from ``sigma_min`` to ``sigma_max``.
    sigma_min, sigma_max : float, default=0.01, 10.0
        Range of the geometric schedule.
    neighbour_scale : float, default=0.05
        Scale the noise to the spacing of the training rows: sigma is multiplied by
        ``noise_scale_ = max(1, sqrt(m / neighbour_scale))``, m the median over training rows of the
        per-feature mean squared distance to their 5 nearest other rows (the noise level at which a
        training row sits from the rest, as DTE-NP estimates it). On sparse sets (few rows, many
        features) rows lie farther apart than the largest noise level of the schedule, so test rows
        fall outside what the network was trained on; 0: no scaling (``noise_scale_ = 1``).
    time_power : float, default=1.0
        Training steps are drawn as t = floor(T u^p), u uniform on [0, 1): 1 is the paper's uniform
        draw; p > 1 draws the small steps, where the test rows of dense sets sit, more often (p = 2
        puts 38 % of the draws in the first of 7 bins instead of 14 %). p = 2 did not raise DTE-C on
        the development half of the ADBench sets (``docs/benchmarks.md``, "Round 7").
    n_networks : int, default=1
        Train an ensemble of this many networks, each with its own initial weights and its own draws
        of steps and noise for the same batches (each trained on its own loss, as if alone; one early
        stopping on their summed held-out loss), and score with the mean of their scores. Fitting and
        scoring cost grow in proportion. On the development half of the ADBench sets 5 networks scored
        below one (``docs/benchmarks.md``, "Round 5"), hence the default of 1.
    fourier_features : int, default=0
        Feed the network, besides x, sin and cos of k random projections of x (random Fourier features,
        frequencies drawn once with ``random_state`` from N(0, I / l^2)), so that it can represent
        a posterior over time that changes on the scale of the gaps between training rows; 0: x alone,
        as the paper. With 256 (and the noise length) DTE-C scored 0.8202 mean AUC-ROC on the
        development half of the ADBench sets against 0.8172 without, under the +0.3 points the protocol
        asked to go further, hence the default of 0 (``docs/benchmarks.md``, "Round 9").
    fourier_scale : float, default=1.0
        l = ``fourier_scale`` times the length that ``fourier_length`` names (``fourier_length_``).
    fourier_length : {"noise", "spacing"}, default="noise"
        ``"noise"``: how far the noise moves a row at the last step of the first time bin (of
        ``n_bins``; of 7 for the networks without bins), sqrt(d) sigma ``noise_scale_``: the finest
        scale on which the posterior over the bins changes. ``"spacing"``: the root mean squared
        distance of a training row to its 5 nearest others; far shorter than the noise on dense
        low-dimensional sets (0 where rows repeat), where the features then oscillate faster than
        anything the network is asked to tell apart (``docs/benchmarks.md``, "Round 8").
"""

_NET_DOC = """
    hidden : tuple of int, default=(256, 512, 256)
    dropout : float
        Dropout after every hidden layer. The reference uses 0.5; the defaults here are 0.1 for
        ``DTECategorical`` and 0 for ``DTEInverseGamma`` and ``DDPMTabular``.
    n_steps : int
        Diffusion steps T of the noising process.
    beta_start, beta_end : float, default=1e-4, 0.01
    lr, weight_decay, batch_size : default=1e-4, 5e-4, 64 (the reference's settings)
    max_epochs : int, default=400
        The reference trains 400 epochs; early stopping on a held-out part usually stops far sooner.
    patience : int, default=20
        Epochs without improvement of the held-out loss before stopping.
    validation_fraction : float, default=0.1
        Random share of the training rows held out for early stopping (0 = train on all, no stopping).
    min_epoch_draws : int, default=4096
        An epoch draws at least this many noised rows: on a set with fewer training rows every row is
        drawn several times an epoch, each time with its own step and noise, so a small set gets as many
        optimiser steps as a large one (0: one draw per row, as the reference).
    device : str or None, default=None
        None = CUDA when available, else CPU.
    random_state : int, default=0
    verbose : bool, default=False
        Progress bar over epochs.
    contamination : float or "auto", default=0.01
        Fraction of training points above ``threshold_`` (``threshold="contamination"``); ``"auto"``:
        no fraction assumed (``diffad.thresholds.fit_threshold``).
    threshold : {"contamination", "pot", "spot", "dspot"}, default="contamination"
        How ``threshold_`` is fitted on the training scores (``diffad.thresholds.fit_threshold``).
"""


def _net_params(self, **kw: Any) -> None:
    for k, v in kw.items():
        setattr(self, k, v)


@register
class DTECategorical(_DTENet):
    __doc__ = (
        """DTE, categorical: an MLP classifies which diffusion-time bin a noised point comes from.

    Training points are noised to a uniformly drawn step t in 0..T-1 (T = ``n_steps`` = 400) and the
    network is trained with cross-entropy to predict the bin ``t * n_bins // T`` (7 bins). The score
    is the expected bin under the predicted distribution: points far from the data look as if they
    had diffused longer. The cross-entropy is taken on the raw logits (one softmax, inside the loss);
    the reference implementation applied a softmax before a loss that applies another one, which
    flattens the gradients and bounds the loss of a confident wrong bin (``reference_softmax=True``
    trains that way, for comparison; the score is the expected bin under the softmax either way).

    Three defaults differ from the reference. Two are for small sets: an epoch draws at least 4,096
    noised rows (``min_epoch_draws``; a set of 100 rows otherwise gets 2 optimiser steps an epoch and
    the network stays near its prior), and the noise is scaled to the spacing of the training rows
    (``neighbour_scale``; otherwise the far rows of a sparse set lie beyond every noise level the
    network was trained on). The third is ``dropout=0.1`` instead of 0.5, so that the network learns
    more in the same epochs (most of all on the large sets). Each was chosen on half of the 35 ADBench
    sets and confirmed on the other half (``docs/benchmarks.md``, "DTE-C on small sets");
    ``min_epoch_draws=0, neighbour_scale=0, dropout=0.5`` train as the reference does.

    Parameters
    ----------
    n_bins : int, default=7
    reference_softmax : bool, default=False
        Train with the reference implementation's extra softmax before the cross-entropy.
    posterior_targets : bool, default=False
        Train each noised draw against the exact posterior over the bins under the training rows,
        p(t | x_t) proportional to p(t) sum_i N(x_t; z_i, sigma_t^2 I) (summed over 4 steps per bin),
        instead of the one-hot bin of its own step. The expected loss is the same up to a constant (the
        one-hot label is a draw from that posterior), so the network is trained towards the same
        function with the label noise integrated out; each training batch then costs a pass over the
        training rows. On the development half of the ADBench sets it scored 0.8198 mean AUC-ROC against
        0.8172 without, at about 11 times the fitting time, hence off by default
        (``docs/benchmarks.md``, "Round 10").
    """
        + _NOISE_DOC
        + _NET_DOC
    )

    _parameter_constraints = {
        **_DTE_NET,
        "n_bins": POSITIVE,
        "reference_softmax": Boolean(),
        "posterior_targets": Boolean(),
    }

    @classmethod
    def _test_params(cls) -> dict[str, Any]:
        return dict(hidden=(16, 16), max_epochs=3)

    def __init__(
        self,
        *,
        n_bins: int = 7,
        reference_softmax: bool = False,
        posterior_targets: bool = False,
        n_steps: int = 400,
        beta_start: float = 1e-4,
        beta_end: float = 0.01,
        schedule: str = "linear",
        sigma_min: float = 0.01,
        sigma_max: float = 10.0,
        neighbour_scale: float = 0.05,
        n_networks: int = 1,
        time_power: float = 1.0,
        fourier_features: int = 0,
        fourier_scale: float = 1.0,
        fourier_length: str = "noise",
        hidden: tuple[int, ...] = (256, 512, 256),
        dropout: float = 0.1,
        lr: float = 1e-4,
        weight_decay: float = 5e-4,
        batch_size: int = 64,
        max_epochs: int = 400,
        patience: int = 20,
        validation_fraction: float = 0.1,
        min_epoch_draws: int = 4096,
        device: str | None = None,
        random_state: int = 0,
        verbose: bool = False,
        contamination: float | str = 0.01,
        threshold: str = "contamination",
    ):
        _net_params(self, **{k: v for k, v in locals().items() if k != "self"})

    def _check(self, d: int) -> None:
        super()._check(d)
        if not 2 <= int(self.n_bins) <= int(self.n_steps):
            raise fail(
                "n_bins", f"an integer in 2..n_steps={self.n_steps}", repr(self.n_bins), "Use the default 7."
            )

    def _out_dim(self, d: int) -> int:
        return int(self.n_bins)

    _mixture: np.ndarray | None = None  # standardised training rows, while posterior targets train
    _targets: tuple | None = None  # what every batch's targets share, made once (``_target_setup``)

    def _prepare(self, Z: np.ndarray) -> None:
        super()._prepare(Z)
        self._mixture = Z if self.posterior_targets else None  # the training rows the targets are taken under
        self._targets = None

    def _fit(self, X: np.ndarray) -> None:
        super()._fit(X)
        self._mixture = self._targets = None  # needed for training only

    def _loss(self, x0: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        x, t = self._noised(x0, gen)
        logits = self._net(x)
        if self.reference_softmax:
            logits = torch.softmax(logits, dim=-1)
        bins = t * self.n_bins // self.n_steps
        target = self._posterior_bins(x) if self.posterior_targets else bins
        losses = F.cross_entropy(
            logits.reshape(-1, self.n_bins), target.reshape(-1, *target.shape[bins.dim() :]), reduction="none"
        )
        return self._network_sum(losses.reshape(bins.shape))

    def _target_setup(self, per_bin: int, dev: torch.device) -> tuple:
        """The training rows and their squared norms on ``dev``, and ``per_bin`` evenly spaced steps of each
        bin: their noise levels, d/2 log s^2, log weights (prior times the share of the bin's steps each
        stands for) and one-hot bins."""
        T, K = int(self.n_steps), int(self.n_bins)
        assert self._mixture is not None
        Zm = torch.tensor(self._mixture, dtype=torch.float32, device=dev)
        steps, log_w, of_bin = [], [], []
        u = np.arange(T + 1) / T  # the prior of a step under t = floor(T u^p)
        for k in range(K):
            a, b = -(-k * T // K), -(-(k + 1) * T // K)  # steps t with t * K // T == k
            grid = np.unique(np.round(np.linspace(a, b - 1, min(per_bin, b - a))).astype(int))
            prior = u[grid + 1] ** (1 / self.time_power) - u[grid] ** (1 / self.time_power)
            steps += grid.tolist()
            log_w += (np.log(prior) + np.log((b - a) / len(grid))).tolist()
            of_bin += [k] * len(grid)
        s2 = self._sig2[torch.tensor(steps, device=dev)] * self.noise_scale_**2
        half_d_log_s2 = 0.5 * Zm.shape[1] * torch.log(s2)
        log_w_t = torch.tensor(log_w, dtype=torch.float32, device=dev)
        onehot = F.one_hot(torch.tensor(of_bin, device=dev), K).float()
        return (per_bin, dev), Zm, (Zm**2).sum(1), s2, half_d_log_s2, log_w_t, onehot

    def _posterior_bins(self, x: torch.Tensor, per_bin: int = 4) -> torch.Tensor:
        """p(bin | x) under the training rows z_i: p(t | x) proportional to p(t) sum_i N(x; z_i, s_t^2 I),
        on ``per_bin`` evenly spaced steps of each bin, each standing for its share of the bin's steps."""
        if self._targets is None or self._targets[0] != (per_bin, x.device):
            self._targets = self._target_setup(per_bin, x.device)
        _, Zm, zz, s2, half_d_log_s2, log_w, onehot = self._targets
        with torch.no_grad():
            flat = x.reshape(-1, x.shape[-1])
            D = ((flat**2).sum(1, keepdim=True) + zz[None, :] - 2.0 * flat @ Zm.T).clamp_min_(0)
            logp = torch.stack([torch.logsumexp(D / (-2.0 * s), dim=1) for s in s2], dim=1)  # (draws, steps)
            post = torch.softmax(logp - half_d_log_s2 + log_w, dim=1)
            return (post @ onehot).reshape(*x.shape[:-1], int(self.n_bins))

    def _member_scores(self, x: torch.Tensor) -> torch.Tensor:
        # the softmax in float64: in float32 confident rows round to one-hot and tie
        p = torch.softmax(self._net(x).double(), dim=-1)
        return p @ torch.arange(self.n_bins, dtype=p.dtype, device=p.device)


@register
class DTEInverseGamma(_DTENet):
    __doc__ = (
        """DTE, inverse gamma: an MLP predicts the scale beta of the inverse-gamma posterior of sigma^2.

    Training points are noised to a uniformly drawn step t; with alpha = d/2 - 1 fixed by the number
    of features, the network output beta(x_t) > 0 (softplus) is trained with the inverse-gamma negative
    log-likelihood of the true sigma_t^2. The score is the predicted scale: it grows with the distance
    of x from the data (in closed form, beta = ||x - x_0||^2 / 2).

    Dropout defaults to 0 here, unlike the categorical version: with the reference's 0.5 the trained
    regressor ranked anomalies *below* normal points (AUC-ROC 0.12 against 0.999 without dropout on
    ``make_tabular(800, 6, kind="global", seed=0)``, 100 epochs; measured on a 2-core CPU).

    Parameters
    ----------
    """
        + _NOISE_DOC
        + _NET_DOC
    )

    _parameter_constraints = _DTE_NET

    @classmethod
    def _test_params(cls) -> dict[str, Any]:
        return dict(hidden=(16, 16), max_epochs=3)

    def __init__(
        self,
        *,
        n_steps: int = 300,
        beta_start: float = 1e-4,
        beta_end: float = 0.01,
        schedule: str = "linear",
        sigma_min: float = 0.01,
        sigma_max: float = 10.0,
        neighbour_scale: float = 0.05,
        n_networks: int = 1,
        time_power: float = 1.0,
        fourier_features: int = 0,
        fourier_scale: float = 1.0,
        fourier_length: str = "noise",
        hidden: tuple[int, ...] = (256, 512, 256),
        dropout: float = 0.0,
        lr: float = 1e-4,
        weight_decay: float = 5e-4,
        batch_size: int = 64,
        max_epochs: int = 400,
        patience: int = 20,
        validation_fraction: float = 0.1,
        min_epoch_draws: int = 4096,
        device: str | None = None,
        random_state: int = 0,
        verbose: bool = False,
        contamination: float | str = 0.01,
        threshold: str = "contamination",
    ):
        _net_params(self, **{k: v for k, v in locals().items() if k != "self"})

    def _out_dim(self, d: int) -> int:
        return 1

    def _beta(self, x: torch.Tensor) -> torch.Tensor:
        return F.softplus(self._net(x)[..., 0]) + 1e-6

    def _loss(self, x0: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        x, t = self._noised(x0, gen)
        alpha = x0.shape[-1] / 2.0 - 1.0
        s = self._sig2[t]
        b = self._beta(x)
        # -log InvGamma(s; alpha, b) without the terms constant in b, divided by alpha to keep the scale of
        # the loss independent of d: -log b + b / (alpha s)
        return self._network_sum(-torch.log(b) + b / (alpha * s))

    def _member_scores(self, x: torch.Tensor) -> torch.Tensor:
        return self._beta(x)


@register
class DDPMTabular(_TabularNet):
    __doc__ = """DDPM reconstruction baseline: noise a point part-way, denoise it back, score the distance.

    An MLP epsilon-predictor (input: the point and a sinusoidal embedding of the step) is trained with
    the DDPM loss (T = ``n_steps`` = 1000, linear betas 1e-4 to 0.02). A point is scored by noising it to
    step ``noise_step`` (q(x_t | x_0), fixed noise per ``random_state``), running the ancestral reverse
    chain back to step 0, and taking the squared distance to the input, averaged over ``n_repeats``
    draws. That is ``noise_step`` network evaluations per point, against one for :class:`DTECategorical`:
    the cost the DTE paper measures.

    Parameters
    ----------
    noise_step : int, default=250
        Step the reverse chain starts from (a quarter of T by default).
    n_repeats : int, default=1
    time_embedding_dim : int, default=32
    """ + _NET_DOC.replace("default=1e-4, 0.01", "default=1e-4, 0.02").replace(
        "min_epoch_draws : int, default=4096", "min_epoch_draws : int, default=0"
    )

    _stream = None  # the noise of a point depends on its place in the scored batch
    _parameter_constraints = {
        **_NET,
        "noise_step": POSITIVE,
        "n_repeats": POSITIVE,
        "time_embedding_dim": POSITIVE,
    }

    @classmethod
    def _test_params(cls) -> dict[str, Any]:
        return dict(hidden=(16, 16), max_epochs=3, n_steps=100, noise_step=25, time_embedding_dim=8)

    def __init__(
        self,
        *,
        n_steps: int = 1000,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        noise_step: int = 250,
        n_repeats: int = 1,
        time_embedding_dim: int = 32,
        hidden: tuple[int, ...] = (256, 512, 256),
        dropout: float = 0.0,
        lr: float = 1e-4,
        weight_decay: float = 5e-4,
        batch_size: int = 64,
        max_epochs: int = 400,
        patience: int = 20,
        validation_fraction: float = 0.1,
        min_epoch_draws: int = 0,
        device: str | None = None,
        random_state: int = 0,
        verbose: bool = False,
        contamination: float | str = 0.01,
        threshold: str = "contamination",
    ):
        _net_params(self, **{k: v for k, v in locals().items() if k != "self"})

    def _check(self, d: int) -> None:
        super()._check(d)
        if not 1 <= int(self.noise_step) <= int(self.n_steps):
            raise fail(
                "noise_step",
                f"an integer in 1..n_steps={self.n_steps}",
                repr(self.noise_step),
                "Use about n_steps / 4.",
            )

    def _build(self, d: int, dev: torch.device) -> None:
        super()._build(d, dev)
        self._sched = DDPMScheduler(self.n_steps, self.beta_start, self.beta_end, kind="linear", device=dev)

    def _in_dim(self, d: int) -> int:
        return d + self.time_embedding_dim

    def _out_dim(self, d: int) -> int:
        return d

    def _eps(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self._net(torch.cat([x, sinusoidal(t, self.time_embedding_dim)], dim=1))

    def _loss(self, x0: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        t = torch.randint(0, self.n_steps, (len(x0),), generator=gen, device=x0.device)
        noise = torch.randn(x0.shape, generator=gen, device=x0.device)
        return F.mse_loss(self._eps(self._sched.add_noise(x0, noise, t), t), noise)

    def _score_batch(self, x0: torch.Tensor) -> torch.Tensor:
        gen = torch.Generator(device=x0.device).manual_seed(self.random_state)
        total = torch.zeros(len(x0), device=x0.device)
        t0 = int(self.noise_step) - 1
        for _ in range(int(self.n_repeats)):
            x = self._sched.add_noise(x0, torch.randn(x0.shape, generator=gen, device=x0.device), t0)
            for t in range(t0, -1, -1):
                x = self._sched.step(
                    self._eps(x, torch.full((len(x),), t, device=x.device)), t, x, generator=gen
                )
            total += ((x - x0) ** 2).sum(dim=1)
        return total / int(self.n_repeats)
