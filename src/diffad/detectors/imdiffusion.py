"""ImDiffusion: imputed diffusion for multivariate time-series anomaly detection (Chen et al., VLDB 2024)."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterable
from functools import cache, partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.scaling import SCALERS, fit_affine
from ..data.series import reassemble, sliding_windows, time_split, window_starts, windowed_time_split
from ..diffusion import (
    PREDICTION_TYPES,
    SAMPLERS,
    SCHEDULES,
    DDPMScheduler,
    forecast_mask,
    full_mask,
    grating_mask,
    impute,
    random_mask,
)
from ..diffusion.imputation import OUTPUTS
from ..exceptions import ConfigError
from ..nn import ImTransformer, ImTransformerConfig
from ..thresholds import ensemble_vote, fit_vote_thresholds
from ..training import FitSettings, chunked_mean, fit_loop, resolve_device
from ..validation import (
    FRACTION,
    NONE,
    POSITIVE,
    TRAINING,
    AnyOf,
    Boolean,
    Integer,
    Options,
    PathLike,
    Real,
    check_is_fitted,
    check_option,
    check_window,
    fail,
    param_hint,
)
from ._torch import TorchDetector
from .base import register

__all__ = ["ImDiffusionDetector"]


@cache
def _compiled_denoise() -> Callable[..., torch.Tensor]:
    """``ImTransformer.denoise`` through ``torch.compile`` with dynamic shapes (any channel count, any
    window length), called with the batch dimension of its inputs marked dynamic so that one compiled
    graph serves every batch of two or more windows (a batch of one gets its own)."""
    compiled = torch.compile(ImTransformer.denoise, dynamic=True)

    def denoise(
        net: ImTransformer, x: torch.Tensor, t: torch.Tensor, sides: list[torch.Tensor]
    ) -> torch.Tensor:
        for a in (x, t, *sides):
            torch._dynamo.mark_dynamic(a, 0)
        return compiled(net, x, t, sides)

    return denoise


MODES = ("imputation", "forecasting", "reconstruction")
TRAIN_MASKS = ("grating", "random")


def channel_error_scale(errors: np.ndarray, axis: int) -> np.ndarray:
    """Per-channel mean of squared imputation errors (NaN = unobserved) along ``axis``, the divisor of
    ``error_norm="channel"``. A channel with no observed or no positive error gets the largest positive
    scale (1.0 if there is none), so no division by zero."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a channel never observed
        scale = np.nanmean(errors, axis=axis)
    ok = np.isfinite(scale) & (scale > 0)
    return np.where(ok, scale, scale[ok].max() if ok.any() else 1.0)


def error_scale(val_errors: np.ndarray, norm: str, floor: float = 0.0) -> np.ndarray:
    """(R, K) divisors of the per-step, per-channel errors for ``error_norm`` ``norm``, from the
    validation tail's errors (R, n_val, K): their channel means for "channel" (none below ``floor``
    times their median over the channels of the step), ones for "none"."""
    if norm != "channel":
        return np.ones(val_errors.shape[::2])
    scale = channel_error_scale(val_errors, axis=1)
    return np.maximum(scale, floor * np.median(scale, axis=1, keepdims=True)) if floor > 0 else scale


def step_thresholds(val_step_errors: np.ndarray, vote_ratio: float) -> np.ndarray:
    """(R,) vote thresholds of the per-step errors (R, n_val) of the validation tail, kept above zero."""
    return np.maximum(fit_vote_thresholds(val_step_errors, vote_ratio), 1e-12)


def reduce_channels(errors: np.ndarray, how: str) -> np.ndarray:
    """(R, n, K) -> (R, n): max or sum over the observed (non-NaN) channels; 0 where none is observed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows are handled below
        red = np.nanmax(errors, axis=2) if how == "max" else np.nansum(errors, axis=2)
    return np.nan_to_num(red, nan=0.0)


def trailing_mean(x: np.ndarray, k: int) -> np.ndarray:
    """Each value of ``x`` replaced by the mean of the last ``k`` values along axis 1 (time), itself
    included; the first ``k - 1`` points average the values there are. ``k <= 1`` returns ``x``."""
    if k <= 1:
        return x
    n = x.shape[1]
    pad = [(0, 0)] * x.ndim
    pad[1] = (1, 0)
    c = np.cumsum(np.pad(x, pad), axis=1, dtype=np.float64)
    end = np.arange(1, n + 1)
    start = np.maximum(end - k, 0)
    shape = [1] * x.ndim
    shape[1] = n
    return (np.take(c, end, axis=1) - np.take(c, start, axis=1)) / (end - start).reshape(shape)


def _widened(Xs: np.ndarray) -> tuple[float, float]:
    """The range of the finite values of ``Xs`` widened by itself and 1 on each side ((-1, 1) if none)."""
    lo, hi = (float(np.nanmin(Xs)), float(np.nanmax(Xs))) if np.isfinite(Xs).any() else (-1.0, 1.0)
    return lo - (hi - lo) - 1.0, hi + (hi - lo) + 1.0


class WindowNoise:
    """Standard normal noise for a batch of windows, each window drawing from a generator of its own
    (seeded from ``random_state`` and the window's index), so that a window's noise, and with it its
    score, does not depend on the batch it is scored in (``inference_batch_size``)."""

    def __init__(
        self,
        random_state: int,
        windows: Iterable[int],
        passes: int,
        shape: tuple[int, int],
        device: torch.device,
    ):
        seeds = [
            int(np.random.SeedSequence([random_state, 2, w]).generate_state(1, np.uint64)[0]) for w in windows
        ]
        self.gens = [torch.Generator(device=device).manual_seed(s) for s in seeds]
        self.shape, self.passes, self.device = shape, passes, device

    def __call__(self) -> torch.Tensor:
        """(B * passes, K, L): each window's passes in a row, in window order."""
        return torch.cat(
            [torch.randn((self.passes, *self.shape), generator=g, device=self.device) for g in self.gens]
        )


SCORES = ("mean", "vote")


def ensemble_score(
    step_errors: np.ndarray, thresholds: np.ndarray, how: str = "mean", xi: int = 0
) -> np.ndarray:
    """(R, n) -> (n,) from each step's error divided by its vote threshold (the step's ratio):

    - ``"mean"``: the mean ratio over the ensemble steps;
    - ``"vote"``: the (xi + 1)-th largest ratio, which exceeds 1 exactly where more than xi steps flag
      the point, so ``score > 1`` is the vote's decision.
    """
    ratios = step_errors / thresholds[:, None]
    if how == "vote":
        return -np.partition(-ratios, xi, axis=0)[xi]
    return ratios.mean(axis=0)


@register
class ImDiffusionDetector(TorchDetector):
    """ImDiffusion anomaly detector for multivariate time series.

    The series is cut into windows. Each window is imputed twice by an unconditional diffusion model:
    grating mask policy 0 hides the even time strips, policy 1 the odd strips, so every point is imputed
    exactly once. At reverse step t the visible region holds the observed values noised forward to
    level t (the network never sees clean values); the hidden region holds the model's own sample.
    The imputation error of several denoising steps (by default every 3rd of the last 30) forms an
    ensemble: each step flags its worst points, and a point is an anomaly when more than ``vote_xi``
    steps flag it.

    Parameters
    ----------
    window : int, default=100
        L, time steps per window.
    n_strips : int, default=10
        Grating strips per window (strip length L / n_strips).
    train_stride : int or None, default=None
        Stride of training windows; ``None`` means ``window // 10``.
    test_stride : int or None, default=None
        Stride of scoring windows; ``None`` means ``window // 2`` (each point is taken from the window in
        which it is most central, as the published code keeps the central half).
    n_blocks, channels, heads, ff_dim : int, default=4, 64, 8, 64
        ImTransformer size (residual blocks, width, attention heads, feed-forward width).
    diffusion_embedding_dim, time_embedding_dim, feature_embedding_dim : int, default=128, 128, 16
    n_steps : int, default=50
        T, diffusion steps.
    beta_start, beta_end : float, default=1e-4, 0.5
    schedule : {"quad", "linear"}, default="quad"
    prediction : {"eps", "x0"}, default="eps"
        What the network predicts: the noise (``"eps"``, the paper's DDPM) with the epsilon MSE on the
        masked entries as the loss, or the clean values (``"x0"``) with their MSE on the masked entries;
        sampling converts an x0 prediction into the implied noise, so both share every sampler. The
        default is the paper's; the ``fast`` preset uses ``"x0"``: on SMD machines 2-1 and 2-4 (seed 0,
        CPU, ``docs/benchmarks.md``) it raised AUC-PR from 0.077 to 0.197 and from 0.141 to 0.496, above
        Isolation Forest and PCA on both, where the noise-predicting preset imputed worse than a straight
        line across each strip.
    train_mask : {"grating", "random"}, default="grating"
        Training masks. ``"grating"`` trains on the same complementary strip masks used for scoring
        (the paper's description); ``"random"`` hides each entry with probability
        ``random_mask_ratio`` (the published code). Grating is the default because it scored higher
        (AUC-PR 0.232 vs 0.211, AUC-ROC 0.589 vs 0.546, mean of two generated series, fast preset;
        ``docs/benchmarks.md``): training on the masks used for scoring avoids a train/score mismatch.
        On two SMD machines (``fast`` preset, seed 0) the two were within single-seed noise (0.177 vs 0.174).
    random_mask_ratio : float, default=0.7
    mode : {"imputation", "forecasting", "reconstruction"}, default="imputation"
        Ablations of the paper: forecasting hides only the final strip (scoring windows then move by one
        strip); reconstruction hides everything and denoises the input from partial noise (level
        ``ensemble_steps * ensemble_stride``) instead of imputing.
    conditional : bool, default=False
        Ablation: feed the clean observed values to the network instead of their noised versions. On two
        SMD machines (``fast`` preset, seed 0) it lowered AUC-PR from 0.177 to 0.138 (``docs/benchmarks.md``).
    temporal, spatial : bool, default=True
        Ablations: drop the temporal or the spatial transformer.
    ensemble_steps : int, default=10
        Denoising steps in the vote (1 = last step only: a fifth of the ``fast`` preset's scoring time; on
        two SMD machines the same honest AUC-PR, a lower point-adjusted F1; ``docs/benchmarks.md``).
    ensemble_stride : int, default=3
        Distance between ensemble steps, counted back from the final step.
    error_reduce : {"max", "sum"}, default="max"
        Per-step, per-time-point error: max or sum over channels of the squared imputation error.
    error_norm : {"none", "channel"}, default="none"
        ``"none"`` is the published rule. ``"channel"`` divides each channel's squared error by its mean
        on the validation tail (per ensemble step) before the max/sum over channels, so that a channel
        that is always hard to impute does not dominate the max; the ``fast`` preset uses it for SMD's
        channels of very different scales. On generated series with similar channels the raw rule
        scored better; on 14 SMD machines (``fast`` preset, one fit scored by every rule) the raw maximum
        had mean AUC-PR 0.380 against 0.404 normalised, and the normalised sum 0.422, with the best rule
        changing from machine to machine; on MSL the raw maximum scored 0.145 against 0.118 normalised
        (near-constant channels get tiny divisors) and the normalised sum 0.118 (``docs/benchmarks.md``,
        ``benchmarks/imdiffusion_rules.py``).
    error_floor : float, default=0.0
        With ``error_norm="channel"``: no channel divisor below ``error_floor`` times the median divisor
        of its ensemble step, so that near-constant channels (tiny divisors) cannot dominate the score.
        0.1 raised the ``fast`` preset's mean AUC-PR on 14 SMD machines from 0.404 to 0.419 and on MSL
        from 0.118 to 0.119 (one fit each, seed 0; ``benchmarks/imdiffusion_rules.py --floor``).
    error_smoothing : int, default=1
        Each ensemble step's channel-reduced error is averaged over the last ``error_smoothing`` time
        points (a trailing mean: past points only, so a live stream computes the same) before the vote
        thresholds are fitted on the validation tail and before scoring; 1 averages nothing (the
        published rule). An anomaly in operations data lasts many points while one point's imputation
        error is noisy. With the ``fast`` preset and ``error_reduce="sum"`` (seed 0), 10 raised the mean
        AUC-PR of ten SMD machines from 0.432 to 0.494 (k-NN: 0.484) but lowered it on MSL from 0.112 to
        0.097 and on SMAP from 0.120 to 0.117, so no preset uses it (``docs/benchmarks.md``, "the score
        rule under a fixed protocol").
    vote_ratio : float, default=0.01
        r: the final step flags its top r of validation errors; step i flags r * mean_err_0 / mean_err_i.
    vote_xi : int or None, default=None
        A point is an anomaly when more than ``vote_xi`` steps flag it; ``None`` means
        ``ensemble_steps // 2`` (a majority).
    score : {"mean", "vote"}, default="mean"
        What ``decision_function`` returns, from each step's error divided by its threshold (the step's
        ratio): ``"mean"``, their mean; ``"vote"``, the (xi + 1)-th largest, which is above 1 exactly
        where the vote flags the point (so ``labels_ == decision_scores_ > threshold_``, as for every
        other detector). ``predict`` is the vote either way.
    sampler : {"ddpm", "ddim"}, default="ddpm"
        ``"ddim"`` jumps deterministically from T to the ensemble steps and visits only those
        (``ensemble_steps`` + ``ddim_jumps`` network calls instead of T).
    ddim_jumps : int, default=2
    ensemble_output : {"x0", "sample"}, default="x0"
        What a denoising step contributes to the ensemble: the network's estimate of the clean values
        at that step (``"x0"``) or the step's stochastic sample x_{t-1} (``"sample"``). ``"x0"`` scored
        higher (AUC-PR 0.232 vs 0.223 on generated series, ``docs/benchmarks.md``): the sample adds the
        step's own noise to the error.
    lr, weight_decay, batch_size : float, float, int, default=1e-3, 1e-6, 12
    max_epochs, patience : int, default=50, 5
        Early stopping on the validation loss (masked entries of held-out windows, fixed noise): training
        stops after ``patience`` epochs without improvement.
    grad_clip : float or None, default=1.0
        Gradient norm clipping; ``None`` clips nothing (the published code).
    epoch_windows : int or None, default=None
        Training windows per epoch: a fresh random draw (without replacement) from all windows at
        ``train_stride``, so a small ``train_stride`` gives varied windows at a fixed cost per epoch.
        ``None``: every window, every epoch.
    time_budget : float or None, default=None
        Seconds of training at most: no epoch starts that the mean epoch time says would end past the
        budget (at least one epoch runs); ``history_["stopped_by"]`` says what ended training.
    validation_fraction : float, default=0.1
        Time-ordered tail of the training series held out for early stopping and thresholds.
    scaler : {"minmax", "standard", "none"}, default="minmax"
        Transform fitted on the training part before the diffusion model: min-max to [0, 1], per-channel
        standardisation, or the raw values (the published code: SMD is already in [0, 1]).
    data_scale : float, default=1.0
        Factor applied after ``scaler``: the model sees ``data_scale * scaler(X)``. The published code
        multiplies the raw values by 20 "so that the Gaussian noise does not dominate": at [0, 1] an SMD
        channel's standard deviation is about 0.04 against unit noise, so the observed context of most
        ensemble steps is near-pure noise. ``paper()`` uses ``scaler="none", data_scale=20``.
    inference_batch_size : int, default=256
        Windows x policies per network call when scoring.
    device : str or None, default=None
        ``None``: CUDA when available, else CPU (resolved in ``fit``).
    amp : bool or "auto", default="auto"
        bfloat16 autocast; ``"auto"`` enables it on CUDA only.
    compile : bool, default=False
        ``torch.compile`` the network: for scoring on any device, for training on CUDA only. On 2 CPU
        cores the ``fast`` preset scores about 1.5x faster (38 channels: 35.5 against 52.7 ms per
        window) after 11-38 s of compiling in the first scoring call, or in :meth:`warm_up`
        (``docs/benchmarks.md``, "Compiled scoring"). Can be switched on after ``fit`` or ``load``
        with ``set_params(compile=True)``.
    checkpoint_dir : str or None, default=None
        Write ``checkpoint.pt`` there after every epoch; ``fit(X, resume=True)`` continues from it.
    random_state : int, default=0
    verbose : bool, default=False
        Progress bars.

    Attributes
    ----------
    n_features_in_ : int
    step_thresholds_ : ndarray of shape (ensemble_steps,)
        Per-step error thresholds fitted on the validation tail.
    threshold_ : float
        1.0, on the score scale: a step flags a point when its ratio exceeds 1; with ``score="vote"``
        ``decision_function(X) > threshold_`` is ``predict(X)``.
    vote_level_ : int
        The vote level xi: ``predict`` returns ``votes(X) > vote_level_``.
    decision_scores_, labels_ : ndarray
        Scores and decisions of the validation tail (the part of the training series held out from
        the weights; scoring the full training series too would add a full scoring pass).
    history_ : dict
        ``train_loss``, ``val_loss``, ``epoch_seconds`` per epoch, ``best_epoch``.
    device_ : str

    Notes
    -----
    ``decision_function`` is the mean over ensemble steps of the step error divided by that step's
    threshold (1.0 = at the threshold), so threshold-free metrics can be computed; ``predict`` is the
    vote. NaN entries are unobserved: they never enter the loss, are imputed when scoring (see
    :meth:`impute`), and a time point with no observed channel gets error 0.

    References
    ----------
    Chen et al., "ImDiffusion: Imputed Diffusion Models for Multivariate Time Series Anomaly
    Detection", PVLDB 17(3), 2024.

    Examples
    --------
    >>> from diffad import ImDiffusionDetector
    >>> from diffad.data.synthetic import make_series
    >>> data = make_series(n_train=1500, n_test=1000, n_channels=4, n_anomalies=4, seed=0)
    >>> det = ImDiffusionDetector.fast(window=32, max_epochs=2, random_state=0).fit(data.train)
    >>> det.decision_function(data.test).shape
    (1000,)
    """

    _allow_nan = True
    _stream = "window"
    _supports_resume = True
    _parameter_constraints = {
        **TRAINING,
        "window": Integer(2),
        "n_strips": POSITIVE,
        "train_stride": AnyOf(POSITIVE, NONE),
        "test_stride": AnyOf(POSITIVE, NONE),
        "n_blocks": POSITIVE,
        "channels": POSITIVE,
        "heads": POSITIVE,
        "ff_dim": POSITIVE,
        "diffusion_embedding_dim": POSITIVE,
        "time_embedding_dim": POSITIVE,
        "feature_embedding_dim": POSITIVE,
        "n_steps": Integer(2),
        "beta_start": Real(0.0, 1.0, low_open=True, high_open=True),
        "beta_end": Real(0.0, 1.0, low_open=True, high_open=True),
        "schedule": Options(*SCHEDULES),
        "prediction": Options(*PREDICTION_TYPES),
        "train_mask": Options(*TRAIN_MASKS),
        "random_mask_ratio": FRACTION,
        "mode": Options(*MODES),
        "conditional": Boolean(),
        "temporal": Boolean(),
        "spatial": Boolean(),
        "ensemble_steps": POSITIVE,
        "ensemble_stride": POSITIVE,
        "error_reduce": Options("max", "sum"),
        "error_norm": Options("channel", "none"),
        "error_floor": Real(0.0),
        "error_smoothing": POSITIVE,
        "vote_ratio": FRACTION,
        "vote_xi": AnyOf(Integer(0), NONE),
        "score": Options(*SCORES),
        "sampler": Options(*SAMPLERS),
        "ddim_jumps": POSITIVE,
        "ensemble_output": Options(*OUTPUTS),
        "validation_fraction": Real(0.0, 0.9, low_open=True),
        "scaler": Options(*SCALERS),
        "data_scale": Real(0.0, low_open=True),
        "inference_batch_size": POSITIVE,
        "grad_clip": AnyOf(Real(0.0, low_open=True), NONE),
        "time_budget": AnyOf(Real(0.0, low_open=True), NONE),
        "epoch_windows": AnyOf(POSITIVE, NONE),
        "amp": AnyOf(Boolean(), Options("auto")),
        "compile": Boolean(),
        "checkpoint_dir": AnyOf(PathLike(), NONE),
    }

    @classmethod
    def _test_params(cls) -> dict[str, Any]:
        return dict(
            window=16,
            n_strips=4,
            train_stride=4,
            test_stride=8,
            n_blocks=1,
            channels=8,
            heads=2,
            ff_dim=16,
            diffusion_embedding_dim=16,
            time_embedding_dim=8,
            feature_embedding_dim=4,
            n_steps=10,
            ensemble_steps=3,
            ensemble_stride=2,
            batch_size=16,
            max_epochs=2,
            patience=1,
        )

    def __init__(
        self,
        *,
        window: int = 100,
        n_strips: int = 10,
        train_stride: int | None = None,
        test_stride: int | None = None,
        n_blocks: int = 4,
        channels: int = 64,
        heads: int = 8,
        ff_dim: int = 64,
        diffusion_embedding_dim: int = 128,
        time_embedding_dim: int = 128,
        feature_embedding_dim: int = 16,
        n_steps: int = 50,
        beta_start: float = 1e-4,
        beta_end: float = 0.5,
        schedule: str = "quad",
        prediction: str = "eps",
        train_mask: str = "grating",
        random_mask_ratio: float = 0.7,
        mode: str = "imputation",
        conditional: bool = False,
        temporal: bool = True,
        spatial: bool = True,
        ensemble_steps: int = 10,
        ensemble_stride: int = 3,
        error_reduce: str = "max",
        error_norm: str = "none",
        error_floor: float = 0.0,
        error_smoothing: int = 1,
        vote_ratio: float = 0.01,
        vote_xi: int | None = None,
        score: str = "mean",
        sampler: str = "ddpm",
        ddim_jumps: int = 2,
        ensemble_output: str = "x0",
        lr: float = 1e-3,
        weight_decay: float = 1e-6,
        batch_size: int = 12,
        max_epochs: int = 50,
        patience: int = 5,
        grad_clip: float | None = 1.0,
        time_budget: float | None = None,
        epoch_windows: int | None = None,
        validation_fraction: float = 0.1,
        scaler: str = "minmax",
        data_scale: float = 1.0,
        inference_batch_size: int = 256,
        device: str | None = None,
        amp: bool | str = "auto",
        compile: bool = False,
        checkpoint_dir: str | None = None,
        random_state: int = 0,
        verbose: bool = False,
    ):
        self.window = window
        self.n_strips = n_strips
        self.train_stride = train_stride
        self.test_stride = test_stride
        self.n_blocks = n_blocks
        self.channels = channels
        self.heads = heads
        self.ff_dim = ff_dim
        self.diffusion_embedding_dim = diffusion_embedding_dim
        self.time_embedding_dim = time_embedding_dim
        self.feature_embedding_dim = feature_embedding_dim
        self.n_steps = n_steps
        self.beta_start = beta_start
        self.beta_end = beta_end
        self.schedule = schedule
        self.prediction = prediction
        self.train_mask = train_mask
        self.random_mask_ratio = random_mask_ratio
        self.mode = mode
        self.conditional = conditional
        self.temporal = temporal
        self.spatial = spatial
        self.ensemble_steps = ensemble_steps
        self.ensemble_stride = ensemble_stride
        self.error_reduce = error_reduce
        self.error_norm = error_norm
        self.error_floor = error_floor
        self.error_smoothing = error_smoothing
        self.vote_ratio = vote_ratio
        self.vote_xi = vote_xi
        self.score = score
        self.sampler = sampler
        self.ddim_jumps = ddim_jumps
        self.ensemble_output = ensemble_output
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.grad_clip = grad_clip
        self.time_budget = time_budget
        self.epoch_windows = epoch_windows
        self.validation_fraction = validation_fraction
        self.scaler = scaler
        self.data_scale = data_scale
        self.inference_batch_size = inference_batch_size
        self.device = device
        self.amp = amp
        self.compile = compile
        self.checkpoint_dir = checkpoint_dir
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ presets
    @classmethod
    def paper(cls, **overrides: Any) -> ImDiffusionDetector:
        """The settings of the published code, wherever diffad has them: the raw values times 20, window
        100, scored with 4 grating strips, 4 blocks x 64 channels, 8 heads, T = 50 (quadratic betas 1e-4..0.5), noise
        prediction, training on every window (stride 1) with random 70 % point masks, batch 12, Adam 1e-3
        with weight decay 1e-6, no gradient clipping, patience 6, test windows with stride 50, and an
        ensemble of the noisy samples of 10 steps (every 3rd of the last 30). Meant for a GPU. Where it
        still differs from the published code, and why: ``docs/benchmarks.md``, "paper() and the
        published code"."""
        params: dict[str, Any] = {
            "window": 100,
            "n_strips": 4,
            "n_blocks": 4,
            "channels": 64,
            "heads": 8,
            "ff_dim": 64,
            "diffusion_embedding_dim": 128,
            "time_embedding_dim": 128,
            "feature_embedding_dim": 16,
            "n_steps": 50,
            "beta_start": 1e-4,
            "beta_end": 0.5,
            "schedule": "quad",
            "prediction": "eps",
            "train_stride": 1,
            "train_mask": "random",
            "random_mask_ratio": 0.7,
            "batch_size": 12,
            "lr": 1e-3,
            "weight_decay": 1e-6,
            "grad_clip": None,
            "max_epochs": 100,
            "patience": 6,
            "test_stride": 50,
            "ensemble_steps": 10,
            "ensemble_stride": 3,
            "ensemble_output": "sample",
            "sampler": "ddpm",
            "scaler": "none",
            "data_scale": 20.0,
        }
        return cls(**{**params, **overrides})

    @classmethod
    def fast(cls, **overrides: Any) -> ImDiffusionDetector:
        """A CPU-friendly preset: a smaller network (2 blocks x 16 channels, one attention head), windows
        of 50, every training window eligible (stride 1) with a fresh draw of 1,024 of them per epoch, at
        most 10 epochs, DDIM jumps to the ensemble steps (12 network calls per window instead of 50), the
        network predicting the clean values (``prediction="x0"``, see ``prediction``), channel-normalised
        errors with divisors floored at a tenth of the median (``error_floor=0.1``, see there), and the
        training part min-max scaled to [0, 1] (``scaler="minmax"``, ``data_scale=1``).

        About 155 s to fit and score one SMD machine on 2 CPU cores (``benchmarks/imdiffusion_speed.py``).
        The network target and the data transform were chosen among min-max x1 / min-max x20 (the
        published scale) / standardised x ``"x0"`` / ``"eps"`` on four development SMD machines and
        checked on the other ten, where the preset scores below k-NN and PCA on honest AUC-PR and VUS-PR
        (``docs/benchmarks.md``, "ImDiffusion: the data scale")."""
        params: dict[str, Any] = {
            "window": 50,
            "n_strips": 10,
            "train_stride": 1,
            "epoch_windows": 1024,
            "test_stride": 25,
            "n_blocks": 2,
            "channels": 16,
            "heads": 1,
            "ff_dim": 32,
            "diffusion_embedding_dim": 64,
            "time_embedding_dim": 32,
            "feature_embedding_dim": 8,
            "batch_size": 32,
            "max_epochs": 10,
            "patience": 3,
            "sampler": "ddim",
            "inference_batch_size": 32,
            "error_norm": "channel",
            "error_floor": 0.1,
            "prediction": "x0",
            "scaler": "minmax",
            "data_scale": 1.0,
        }
        return cls(**{**params, **overrides})

    # ------------------------------------------------------------------ set-up helpers
    def _check_params(self) -> None:
        super()._check_params()
        span = (self.ensemble_steps - 1) * self.ensemble_stride
        if self.ensemble_steps < 1 or self.ensemble_stride < 1 or span >= self.n_steps:
            raise fail(
                "ensemble",
                f"ensemble_steps >= 1, ensemble_stride >= 1 and (ensemble_steps - 1) * ensemble_stride < n_steps={self.n_steps}",
                f"ensemble_steps={self.ensemble_steps}, ensemble_stride={self.ensemble_stride}",
                "Use fewer or closer ensemble steps.",
            )
        if self._xi() >= self.ensemble_steps or self._xi() < 0:
            raise fail(
                "vote_xi",
                f"an integer in [0, {self.ensemble_steps - 1}]",
                repr(self.vote_xi),
                "Votes range from 0 to ensemble_steps.",
            )
        if self.window < 2 or not 1 <= self.n_strips <= self.window:
            raise fail(
                "window / n_strips",
                "window >= 2 and 1 <= n_strips <= window",
                f"window={self.window}, n_strips={self.n_strips}",
                "Fix the window settings.",
            )
        if self.channels % self.heads:
            raise fail(
                "channels / heads",
                "channels a multiple of heads",
                f"channels={self.channels}, heads={self.heads}",
                f"Set {param_hint('heads', '1')} or another divisor of channels.",
            )
        if self.test_stride is not None and self.test_stride > self.window:
            raise fail(
                "test_stride",
                f"at most window={self.window} (scoring windows must cover every time point)",
                repr(self.test_stride),
                f"Set {param_hint('test_stride', str(max(1, self.window // 2)))}, or a larger window.",
            )

    def _xi(self) -> int:
        return self.ensemble_steps // 2 if self.vote_xi is None else int(self.vote_xi)

    def _record_steps(self) -> list[int]:
        """Diffusion steps t whose output x_{t-1} enters the ensemble (0 = the final step), final first."""
        return [i * self.ensemble_stride for i in range(self.ensemble_steps)]

    def _build(self, K: int, device: torch.device) -> None:
        cfg = ImTransformerConfig(
            n_features=K,
            n_blocks=self.n_blocks,
            channels=self.channels,
            heads=self.heads,
            ff_dim=self.ff_dim,
            diffusion_embedding_dim=self.diffusion_embedding_dim,
            time_embedding_dim=self.time_embedding_dim,
            feature_embedding_dim=self.feature_embedding_dim,
            temporal=self.temporal,
            spatial=self.spatial,
        )
        self._net = ImTransformer(cfg).to(device)
        self._sched = DDPMScheduler(
            self.n_steps, self.beta_start, self.beta_end, self.schedule, device=device
        )

    def _denoiser(self, *, training: bool) -> Callable[..., torch.Tensor]:
        """The network's ``denoise``, compiled where ``compile`` asks for it (scoring on any device,
        training on CUDA). One compiled function serves every network of the process (its code does
        not depend on the weights), and none is kept in the detector, so saving, copying and pickling
        a detector are unchanged."""
        if not self.compile or (training and not str(self.device_).startswith("cuda")):
            return self._net.denoise
        return partial(_compiled_denoise(), self._net)

    def _autocast(self):
        """bfloat16 autocast on CUDA when ``amp`` is True or "auto"; nothing on CPU."""
        use = str(self.device_).startswith("cuda") and self.amp in (True, "auto")
        return torch.autocast("cuda", dtype=torch.bfloat16) if use else contextlib.nullcontext()

    def _scale(self, X: np.ndarray) -> np.ndarray:
        return X * self.scale_a_ + self.scale_b_

    def _windows(self, X: np.ndarray, stride: int) -> tuple[np.ndarray, np.ndarray]:
        W, starts = sliding_windows(X, self.window, stride)  # (B, L, K)
        return np.ascontiguousarray(W.transpose(0, 2, 1)), starts  # (B, K, L)

    # ------------------------------------------------------------------ training
    def _train_masks(
        self, B: int, K: int, L: int, gen: torch.Generator, dev
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(target mask (B, K, L), policy ids (B,)) for a training batch."""
        if self.mode == "forecasting":
            return forecast_mask(B, K, L, self.n_strips, dev), torch.zeros(B, dtype=torch.long, device=dev)
        if self.mode == "reconstruction":
            return full_mask(B, K, L, dev), torch.zeros(B, dtype=torch.long, device=dev)
        if self.train_mask == "random":
            return random_mask(B, K, L, self.random_mask_ratio, gen, dev), torch.zeros(
                B, dtype=torch.long, device=dev
            )
        policy = torch.randint(0, 2, (B,), generator=gen, device=dev)
        return grating_mask(policy, K, L, self.n_strips), policy

    def _net_input(
        self, x0: torch.Tensor, cond: torch.Tensor, noisy_cond: torch.Tensor, sample: torch.Tensor
    ) -> torch.Tensor:
        """(B, 2, K, L): conditioning channel (clean values if ``conditional`` else noised) and sample channel."""
        c = x0 * cond if self.conditional else noisy_cond * cond
        return torch.stack([c, sample * (1.0 - cond)], dim=1)

    def _loss(
        self,
        x0: torch.Tensor,
        observed: torch.Tensor,
        target: torch.Tensor,
        policy: torch.Tensor,
        t: torch.Tensor,
        noise: torch.Tensor,
    ) -> torch.Tensor:
        """MSE of the prediction (noise or clean values, per ``prediction``) on the target entries that are
        observed; unmasked entries never enter the loss."""
        cond = observed * (1.0 - target)
        x_t = self._sched.add_noise(x0, noise, t)
        with self._autocast():
            out = self._denoiser(training=True)(
                self._net_input(x0, cond, x_t, x_t), t, self._net.condition(cond, policy)
            ).float()
        w = target * observed
        goal = noise if self.prediction == "eps" else x0
        return ((out - goal) ** 2 * w).sum() / w.sum().clamp_min(1.0)

    def _fit(self, X: np.ndarray, resume: bool = False) -> None:
        n, K = X.shape
        L = self.window
        train_part, val_part = windowed_time_split(X, self.validation_fraction, L)
        dev = resolve_device(self.device)
        self.device_ = str(dev)
        self._memo: tuple[str, np.ndarray, np.ndarray] | None = None
        a, b = fit_affine(self.scaler, train_part)
        self.scale_a_, self.scale_b_ = (
            a * self.data_scale,
            b * self.data_scale,
        )  # what the diffusion model sees
        self.clip_ = list(_widened(self._scale(train_part)))
        self._build(K, dev)
        gen = torch.Generator(device=dev).manual_seed(self.random_state)
        rng = np.random.default_rng(self.random_state)

        def to_dev(W: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
            obs = ~np.isnan(W)
            return torch.tensor(np.where(obs, W, 0.0), dtype=torch.float32, device=dev), torch.tensor(
                obs, dtype=torch.float32, device=dev
            )

        # training windows are gathered from the series batch by batch (the same values as cutting them
        # all up front, without holding every overlapping window: a long or pooled series fits in memory)
        tr_starts = window_starts(len(train_part), L, self.train_stride or max(1, L // 10))
        tr_series, tr_series_obs = to_dev(self._scale(train_part))  # (n, K)
        offsets = torch.arange(L, device=dev)
        va_x, va_obs = to_dev(self._windows(self._scale(val_part), L)[0])
        # fixed validation draw (masks, steps, noise): a deterministic, cheap early-stopping signal
        vgen = torch.Generator(device=dev).manual_seed(self.random_state + 1)
        Bv = va_x.shape[0]
        v_target, v_policy = self._train_masks(Bv, K, L, vgen, dev)
        v_t = torch.randint(0, self.n_steps, (Bv,), generator=vgen, device=dev)
        v_noise = torch.randn(va_x.shape, generator=vgen, device=dev)

        def train_loss(idx: np.ndarray) -> torch.Tensor:
            pos = torch.as_tensor(tr_starts[idx], device=dev)[:, None] + offsets  # (B, L)
            x0, obs = tr_series[pos].transpose(1, 2), tr_series_obs[pos].transpose(1, 2)  # (B, K, L)
            B = x0.shape[0]
            target, policy = self._train_masks(B, K, L, gen, dev)
            t = torch.randint(0, self.n_steps, (B,), generator=gen, device=dev)
            noise = torch.randn(x0.shape, generator=gen, device=dev)
            return self._loss(x0, obs, target, policy, t, noise)

        def val_loss() -> float:
            return chunked_mean(
                lambda s: self._loss(va_x[s], va_obs[s], v_target[s], v_policy[s], v_t[s], v_noise[s]),
                Bv,
                self.inference_batch_size,
            )

        ckpt = Path(self.checkpoint_dir) / "checkpoint.pt" if self.checkpoint_dir else None
        settings = FitSettings(
            lr=self.lr,
            weight_decay=self.weight_decay,
            batch_size=self.batch_size,
            samples_per_epoch=self.epoch_windows,
            max_epochs=self.max_epochs,
            patience=self.patience,
            grad_clip=self.grad_clip or 0.0,
            time_budget=self.time_budget,
            checkpoint=ckpt,
            resume=resume,
            fingerprint=self._fit_fingerprint(X),
            verbose=self.verbose,
            desc="ImDiffusion fit",
        )
        history, best = fit_loop(self._net, train_loss, val_loss, len(tr_starts), settings, rng, (gen,))
        self.history_ = {**history, "best_epoch": best}
        # thresholds from the validation tail, which the weights never saw
        val_err = self._errors(val_part)[0]  # (R, n_val, K); memoised for _fit_scores
        self.error_scale_ = error_scale(val_err, self.error_norm, self.error_floor)  # (R, K)
        self.step_thresholds_ = step_thresholds(self._reduce(val_err), self.vote_ratio)

    def fit(self, X: Any, y: Any = None, *, resume: bool = False) -> ImDiffusionDetector:
        """Fit on a training series (n, K); NaN entries are treated as unobserved.

        ``resume=True`` continues an interrupted fit from ``checkpoint_dir``.
        """
        return super().fit(X, resume=resume)

    def _fit_scores(self, X: np.ndarray) -> None:
        """Scores, threshold (1 on the ratio scale), vote level and decisions of the validation tail."""
        tail = time_split(X, self.validation_fraction)[1]
        self.threshold_ = 1.0
        self.vote_level_ = self._xi()
        self.decision_scores_ = self._score(tail)
        self.labels_ = self._decide(tail)

    # ------------------------------------------------------------------ inference
    def _score_masks(self, K: int, dev) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Scoring passes per window: (targets (P, K, L), policy ids (P,), P)."""
        L = self.window
        if self.mode == "forecasting":
            return forecast_mask(1, K, L, self.n_strips, dev), torch.zeros(1, dtype=torch.long, device=dev), 1
        if self.mode == "reconstruction":
            return full_mask(1, K, L, dev), torch.zeros(1, dtype=torch.long, device=dev), 1
        policy = torch.arange(2, device=dev)
        ids = policy if self.train_mask == "grating" else torch.zeros(2, dtype=torch.long, device=dev)
        return grating_mask(policy, K, L, self.n_strips), ids, 2

    def _sample(
        self,
        x0: torch.Tensor,
        observed: torch.Tensor,
        target: torch.Tensor,
        policy: torch.Tensor,
        noise: WindowNoise,
        clip: tuple[float, float],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Impute the target region of a batch; returns (recorded samples (R, B, K, L), final sample (B, K, L)).

        Unconditional imputation: at every step the conditioning channel holds the observed values
        noised forward to the current level with fresh noise. ``noise()`` draws the batch's noise;
        ``clip`` bounds the x_0 estimates (from the whole series, so no batch changes them).
        """
        cond = observed * (1.0 - target)
        record = self._record_steps()
        sides = self._net.condition(cond, policy)
        sched = self._sched.with_settings(prediction_type=self.prediction, sampler=self.sampler)
        start = self.n_steps - 1
        x = noise()
        if self.mode == "reconstruction":  # partial diffusion of the input itself
            start = min(record[-1] + self.ensemble_stride, self.n_steps - 1)
            x = sched.add_noise(x0, x, start)
        timesteps = sched.set_timesteps(start, record, self.ddim_jumps)

        denoise = self._denoiser(training=False)

        def model(noisy: torch.Tensor, sample: torch.Tensor, t_vec: torch.Tensor) -> torch.Tensor:
            return denoise(self._net_input(x0, cond, noisy, sample), t_vec, sides)

        with self._autocast():
            return impute(model, sched, x0, cond, x, timesteps, record, noise, clip, self.ensemble_output)

    def _score_stride(self) -> int:
        """Stride of the scoring windows."""
        L = self.window
        return max(1, L // self.n_strips if self.mode == "forecasting" else (self.test_stride or L // 2))

    def _clip(self, Xs: np.ndarray) -> tuple[float, float]:
        """Generous bounds on the x_0 estimates: the scaled training range widened by itself and 1 on
        each side (``clip_``, fixed at fit, so that a point's score never depends on other test points).
        Models saved before ``clip_`` existed take the range of the series being scored."""
        clip = getattr(self, "clip_", None)
        if clip is not None:
            return float(clip[0]), float(clip[1])
        return _widened(Xs)

    def _window_errors(
        self, W: np.ndarray, numbers: np.ndarray, clip: tuple[float, float]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Squared imputation errors of the ensemble steps for scaled windows ``W`` (B, K, L) whose
        numbers on the scoring grid are ``numbers`` (each window's noise is drawn by its number, so windows
        of several series can share a batch).

        Returns ``(errors (R, B, K, L), imputed (B, K, L))``; errors are NaN at unobserved entries.
        """
        B, K, L = W.shape
        dev = torch.device(self.device_)
        obs_np = ~np.isnan(W)
        targets, ids, P = self._score_masks(K, dev)
        R = self.ensemble_steps
        err = np.empty((R, B, K, L), dtype=np.float32)
        imp = np.zeros((B, K, L), dtype=np.float32)
        per_call = max(1, self.inference_batch_size // P)
        chunks = range(0, B, per_call)
        self._net.eval()
        with torch.no_grad():
            for i in tqdm(chunks, desc="ImDiffusion score", disable=not self.verbose or B <= per_call):
                w = slice(i, min(i + per_call, B))
                x0 = torch.tensor(np.where(obs_np[w], W[w], 0.0), dtype=torch.float32, device=dev)
                obs = torch.tensor(obs_np[w], dtype=torch.float32, device=dev)
                b = x0.shape[0]
                # all passes of all windows of the chunk in one batch: (b*P, K, L)
                xb, ob = x0.repeat_interleave(P, 0), obs.repeat_interleave(P, 0)
                tb = targets.repeat(b, 1, 1)
                noise = WindowNoise(self.random_state, numbers[w].tolist(), P, (K, L), dev)
                rec, final = self._sample(xb, ob, tb, ids.repeat(b), noise, clip)
                resp = tb.reshape(b, P, K, L)  # which pass imputes which entry
                e = ((rec - xb) ** 2).reshape(R, b, P, K, L)
                e = (e * resp).sum(2) / resp.sum(1).clamp_min(1.0)  # (R, b, K, L)
                e = torch.where(resp.sum(1) > 0, e, torch.nan)
                err[:, w] = torch.where(obs.bool(), e, torch.nan).cpu().numpy()
                imp[w] = (
                    ((final.reshape(b, P, K, L) * resp).sum(1) / resp.sum(1).clamp_min(1.0)).cpu().numpy()
                )
        return err, imp

    def _step_errors_scaled(self, Xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Squared imputation errors of the ensemble steps for a scaled series (n, K).

        Returns ``(errors (R, n, K), imputed (n, K))``; errors are NaN at unobserved entries.
        """
        check_is_fitted(self, ("n_features_in_",))
        n = Xs.shape[0]
        check_window(n, self.window)
        W, starts = self._windows(Xs, self._score_stride())  # (Bw, K, L)
        err, imp = self._window_errors(W, np.arange(W.shape[0]), self._clip(Xs))
        rule = self._reassembly()
        errors = np.stack(
            [reassemble(err[r].transpose(0, 2, 1), starts, n, rule=rule) for r in range(err.shape[0])]
        )  # (R, n, K)
        imputed = reassemble(imp.transpose(0, 2, 1), starts, n, rule=rule)
        return errors, imputed

    def _reassembly(self) -> str:
        return "central" if self.mode != "forecasting" else "mean"

    # ------------------------------------------------------------------ streaming (diffad.stream)
    def _stream_grid(self) -> tuple[int, int, str]:
        """(window, stride, reassembly rule) of the scoring windows."""
        return self.window, self._score_stride(), self._reassembly()

    def _check_streamable(self) -> None:
        if not hasattr(self, "clip_"):
            raise ConfigError(
                "stream: this ImDiffusion model was saved by an older diffad, whose scores depend on the range of "
                "the whole scored series; fit it again to stream it."
            )

    def _stream_windows(self, windows: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Per-window outputs (B, L, R * K) of unscaled windows (B, L, K) with grid numbers ``ids``:
        the squared errors of every ensemble step, time along axis 1."""
        B, L, K = windows.shape
        W = np.ascontiguousarray(self._scale(windows).transpose(0, 2, 1))  # (B, K, L)
        err = self._window_errors(W, np.asarray(ids, dtype=np.int64), self._clip(W))[0]  # (R, B, K, L)
        return err.transpose(1, 3, 0, 2).reshape(B, L, -1)  # (B, L, R*K)

    def _stream_context(self) -> int:
        return self.error_smoothing - 1

    def _stream_points(self, outputs: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(scores, decisions, attribution) of points from their reassembled window outputs (n, R * K)."""
        n = outputs.shape[0]
        errors = outputs.reshape(n, self.ensemble_steps, -1).transpose(1, 0, 2)  # (R, n, K)
        reduced = self._reduce(errors)
        scores = ensemble_score(reduced, self.step_thresholds_, self.score, self._xi())
        flags = ensemble_vote(reduced, self.step_thresholds_, self._xi())[1]
        return scores, flags, self._attribution(errors)

    def _reduce(self, errors: np.ndarray, how: str | None = None) -> np.ndarray:
        """(R, n, K) -> (R, n): channel-normalised errors, max or sum (``how``, default ``error_reduce``)
        over observed channels (0 where no channel is observed), averaged over the last
        ``error_smoothing`` points."""
        how = check_option(how or self.error_reduce, ("max", "sum"), name="reduce")
        return trailing_mean(reduce_channels(self._normalised(errors), how), self.error_smoothing)

    def _normalised(self, errors: np.ndarray) -> np.ndarray:
        """(R, n, K) errors divided by ``error_scale_`` (``error_norm``)."""
        return errors / self.error_scale_[:, None, :]

    def _check_scoring_input(self, X: np.ndarray) -> None:
        check_window(X.shape[0], self.window)

    def _errors(self, arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Memoised (errors (R, n, K), imputed (n, K)) of an unscaled series: predict after
        decision_function on the same data costs nothing extra."""
        key = self._digest(
            arr, ("verbose",)
        )  # data and parameters: set_params(sampler=...) is never served stale errors
        memo = getattr(self, "_memo", None)
        if memo is not None and memo[0] == key:
            return memo[1], memo[2]
        errors, imputed = self._step_errors_scaled(self._scale(arr))
        self._memo = (key, errors, imputed)
        return errors, imputed

    def _score(self, X: np.ndarray) -> np.ndarray:
        return ensemble_score(self._reduce(self._errors(X)[0]), self.step_thresholds_, self.score, self._xi())

    def _decide(self, X: np.ndarray) -> np.ndarray:
        return ensemble_vote(self._reduce(self._errors(X)[0]), self.step_thresholds_, self._xi())[1]

    # ------------------------------------------------------------------ public extras
    def warm_up(self) -> ImDiffusionDetector:
        """With ``compile=True``, compile the scoring network now (by scoring two windows of zeros):
        29-38 s on 2 CPU cores with torch's on-disk compile cache empty, 11-14 s with it warm; once per
        process, as every later model reuses the compiled code. Nothing otherwise."""
        check_is_fitted(self, ("n_features_in_",))
        if self.compile:
            windows = np.zeros((2, self.window, self.n_features_in_))
            self._stream_windows(windows, np.arange(2))
        return self

    def step_errors(self, X: Any, reduce: str | None = None) -> np.ndarray:
        """Per-step, per-time-point imputation error, shape (ensemble_steps, n); row 0 is the final step.

        ``reduce`` ("max" or "sum" over channels) overrides ``error_reduce`` for this call; the imputation
        is not recomputed. The reduced errors are averaged over the last ``error_smoothing`` points, as
        the vote reads them. ``reduce="none"`` keeps the channels: shape (ensemble_steps, n, K), the squared
        errors divided by ``error_scale_`` (``error_norm``), NaN at unobserved entries, not averaged.
        """
        errors = self._errors(self._validate(X)[0])[0]
        if reduce == "none":
            return self._normalised(errors)
        return self._reduce(errors, reduce)

    def votes(self, X: Any) -> np.ndarray:
        """How many ensemble steps flag each time point (0..ensemble_steps)."""
        return ensemble_vote(self.step_errors(X), self.step_thresholds_, self._xi())[0]

    def explain(self, X: Any) -> np.ndarray:
        """(n, K): each channel's share of the score ``decision_function`` gives each time point (rows sum
        to 1 where the score is positive): a root-cause hint.

        The score is the mean over ensemble steps (``score="vote"``: the (xi + 1)-th largest) of the
        step's channel-reduced, normalised error divided by the step's threshold; this splits exactly
        that sum (that step's ratio). With ``error_reduce="sum"`` every channel
        contributes its own normalised error; with ``"max"`` each step's contribution goes to the channel
        that holds the maximum. So ``explain(X) * decision_function(X)[:, None]`` adds up to the score.
        """
        return self._attribution(self._errors(self._validate(X)[0])[0])

    def _attribution(self, errors: np.ndarray) -> np.ndarray:
        """:meth:`explain` from the (R, n, K) step errors."""
        norm = np.nan_to_num(self._normalised(errors), nan=0.0)  # (R, n, K)
        if self.error_reduce == "max":
            top = norm.argmax(axis=2)[..., None]  # (R, n, 1)
            norm = np.where(np.arange(norm.shape[2]) == top, norm, 0.0)
        steps = norm / self.step_thresholds_[:, None, None]  # (R, n, K); sums over K to each step's ratio
        steps = trailing_mean(steps, self.error_smoothing)  # a linear map of time: the sums still hold
        if self.score == "vote":  # the score is one step's ratio per point: the (xi + 1)-th largest
            ratios = steps.sum(axis=2)
            pick = np.argpartition(-ratios, self._xi(), axis=0)[self._xi()]  # (n,)
            contrib = steps[pick, np.arange(steps.shape[1])]
        else:
            contrib = steps.mean(axis=0)  # (n, K), sums to the score
        total = contrib.sum(axis=1, keepdims=True)
        return np.divide(contrib, total, out=np.zeros_like(contrib), where=total > 0)

    def impute(self, X: Any) -> np.ndarray:
        """X with its NaN entries filled by the model's imputation (final denoising step), in X's units."""
        arr = self._validate(X)[0]
        filled = (self._errors(arr)[1] - self.scale_b_) / self.scale_a_
        return np.where(np.isnan(arr), filled, arr)

    # ------------------------------------------------------------------ persistence
    def _set_state(self, attrs, arrays, weights) -> None:
        super()._set_state(attrs, arrays, weights)
        if "vote_level_" not in attrs:  # saved when threshold_ held the vote level
            self.threshold_, self.vote_level_ = 1.0, self._xi()
        self._memo = None
