"""Self-distilled masked autoencoder (SDMAE) for multivariate time-series anomaly detection.

Training: windows of the (scaled) training series are masked with one of four strategies
(:data:`diffad.nn.sdmae.MASKINGS`); a transformer encoder reads the visible part, a deeper *teacher*
and a shallower *student* decoder reconstruct the window. Loss, on the masked entries::

    L = MSE(teacher, x) + MSE(student, x) + distill_weight * MSE(student, stopgrad(teacher))

The student learns to follow the teacher on normal data; where data is unlike the training data the
two drift apart, so their discrepancy is an anomaly signal besides the reconstruction error.

With labelled anomalies (``fit(X, y)``, y = 0/1 per time point), windows that hold a labelled anomaly
are kept out of the reconstruction terms and add a hinge term that pushes the student away from the
teacher there: ``+ anomaly_weight * mean(relu(margin - D))`` with D the window's mean squared
student-teacher discrepancy (teacher detached), so normal windows pull D down and labelled ones up.

Scoring (``score_level="point"``): each window is passed ``window / patch`` times, pass j masking
patch j (all channels); every entry is thus reconstructed once from its context. Per time point,
the teacher's squared error and the squared student-teacher discrepancy, each averaged over channels
and divided by its mean on the validation tail of the training series, are added; overlapping
windows are averaged. ``score_level="sequence"`` scores each window by the mean of its point scores
and gives every time point the largest score of the windows that cover it (``window_scores`` gives
the per-window values).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..data.scaling import SCALERS, fit_affine
from ..data.series import reassemble, sliding_windows, time_split, windowed_time_split
from ..nn.sdmae import MASKINGS, SDMAE, make_mask
from ..thresholds import apply_threshold, fit_threshold
from ..training import FitSettings, chunked_mean, fit_loop, resolve_device
from ..validation import (
    CONTAMINATION,
    NONE,
    POSITIVE,
    THRESHOLD,
    TRAINING,
    AnyOf,
    Integer,
    Options,
    Real,
    check_labels,
    check_window,
    fail,
)
from ._torch import TorchDetector
from .base import register

__all__ = ["SelfDistilledMAEDetector"]

VARIANTS = ("full", "teacher", "student")


@register
class SelfDistilledMAEDetector(TorchDetector):
    """Self-distilled masked autoencoder: teacher/student decoders with a discrepancy loss.

    Parameters
    ----------
    window, patch : int, default=100, 10
        Window length and patch length (``window`` must be a multiple of ``patch``).
    d_model, heads : int, default=64, 4
    encoder_layers, teacher_layers, student_layers : int, default=3, 4, 1
    masking : {"patch", "token", "temporal", "feature"}, default="patch"
    mask_ratio : float, default=0.6
        Share of units masked in training; 0 = no masking (the autoencoder reconstructs what it sees,
        and scores with one unmasked pass): the "no masking" ablation.
    distill_weight : float, default=0.5
        lambda of the discrepancy term; 0 = the "no discrepancy loss" ablation.
    variant : {"full", "teacher", "student"}, default="full"
        "teacher" / "student": only that decoder is built, trained and used (score = its error).
    score_level : {"point", "sequence"}, default="point"
    anomaly_weight, margin : float, default=1.0, 1.0
        Hinge term for labelled anomalies (only used when ``fit`` gets ``y``).
    train_stride : int, default=1
        Stride of the training windows (every window: the model needs the updates; see docs/benchmarks.md).
    test_stride : int or None, default=None
        Stride of the scoring windows; None = window // 2.
    scaler : {"standard", "minmax", "none"}, default="standard"
    lr, weight_decay, batch_size, max_epochs, patience : training settings (1e-3, 1e-5, 64, 30, 5)
    validation_fraction : float, default=0.2
        Time-ordered tail of the training series for early stopping, score normalisation and the threshold.
    contamination : float or "auto", default=0.01
        Share of the validation tail above ``threshold_`` (``threshold="contamination"``); ``"auto"``:
        no share assumed (``diffad.thresholds.fit_threshold``).
    threshold : {"contamination", "pot", "spot", "dspot"}, default="contamination"
        How ``threshold_`` is fitted on the validation tail's scores (``diffad.thresholds.fit_threshold``).
    device, random_state, verbose : as the other torch detectors.
    """

    _uses_labels = True
    _stream = "window"
    _parameter_constraints = {
        **TRAINING,
        "window": Integer(2),
        "patch": POSITIVE,
        "d_model": POSITIVE,
        "heads": POSITIVE,
        "encoder_layers": POSITIVE,
        "teacher_layers": POSITIVE,
        "student_layers": POSITIVE,
        "masking": Options(*MASKINGS),
        "mask_ratio": Real(0.0, 0.95),
        "distill_weight": Real(0.0),
        "variant": Options(*VARIANTS),
        "score_level": Options("point", "sequence"),
        "anomaly_weight": Real(0.0),
        "margin": Real(0.0),
        "train_stride": POSITIVE,
        "test_stride": AnyOf(POSITIVE, NONE),
        "scaler": Options(*SCALERS),
        "validation_fraction": Real(0.0, 0.9, low_open=True, high_open=True),
        "contamination": CONTAMINATION,
        "threshold": THRESHOLD,
    }

    @classmethod
    def _test_params(cls) -> dict[str, Any]:
        return dict(
            window=20,
            patch=5,
            d_model=16,
            heads=2,
            encoder_layers=1,
            teacher_layers=1,
            student_layers=1,
            max_epochs=2,
        )

    def __init__(
        self,
        *,
        window: int = 100,
        patch: int = 10,
        d_model: int = 64,
        heads: int = 4,
        encoder_layers: int = 3,
        teacher_layers: int = 4,
        student_layers: int = 1,
        masking: str = "patch",
        mask_ratio: float = 0.6,
        distill_weight: float = 0.5,
        variant: str = "full",
        score_level: str = "point",
        anomaly_weight: float = 1.0,
        margin: float = 1.0,
        train_stride: int = 1,
        test_stride: int | None = None,
        scaler: str = "standard",
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        batch_size: int = 64,
        max_epochs: int = 30,
        patience: int = 5,
        validation_fraction: float = 0.2,
        contamination: float | str = 0.01,
        threshold: str = "contamination",
        device: str | None = None,
        random_state: int = 0,
        verbose: bool = False,
    ):
        self.window = window
        self.patch = patch
        self.d_model = d_model
        self.heads = heads
        self.encoder_layers = encoder_layers
        self.teacher_layers = teacher_layers
        self.student_layers = student_layers
        self.masking = masking
        self.mask_ratio = mask_ratio
        self.distill_weight = distill_weight
        self.variant = variant
        self.score_level = score_level
        self.anomaly_weight = anomaly_weight
        self.margin = margin
        self.train_stride = train_stride
        self.test_stride = test_stride
        self.scaler = scaler
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.contamination = contamination
        self.threshold = threshold
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ set-up
    def _check_params(self) -> None:
        super()._check_params()
        if self.window % self.patch:
            raise fail(
                "window / patch",
                "a window that is a multiple of patch",
                f"window={self.window}, patch={self.patch}",
                "Pick e.g. window=100, patch=10.",
            )
        if self.d_model % self.heads:
            raise fail(
                "d_model", f"a multiple of heads={self.heads}", str(self.d_model), "Change d_model or heads."
            )

    @property
    def _decoders(self) -> tuple[str, ...]:
        return ("teacher", "student") if self.variant == "full" else (self.variant,)

    def _build(self, K: int, dev: torch.device) -> None:
        self._net = SDMAE(
            K,
            self.window,
            self.patch,
            self.d_model,
            self.heads,
            self.encoder_layers,
            self.teacher_layers,
            self.student_layers,
            self._decoders,
        ).to(dev)

    def _scale(self, X: np.ndarray) -> np.ndarray:
        return X * self.scale_a_ + self.scale_b_

    # ------------------------------------------------------------------ training
    def _loss(self, x: torch.Tensor, anomalous: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        B, L, K = x.shape
        if self.mask_ratio > 0:
            mask = make_mask(self.masking, B, L, K, self.mask_ratio, gen, self.patch, x.device)
        else:
            mask = torch.zeros(B, L, K, dtype=torch.bool, device=x.device)
        out = self._net(x, mask)
        w = (mask if self.mask_ratio > 0 else torch.ones_like(mask)).float()  # entries the loss looks at
        normal = (~anomalous).float()[:, None, None]

        def masked_mse(a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
            return ((a - b) ** 2 * weight).sum() / weight.sum().clamp_min(1.0)

        loss = torch.stack([masked_mse(r, x, w * normal) for r in out.values()]).sum()
        if len(out) == 2:
            disc = (out["student"] - out["teacher"].detach()) ** 2
            loss = loss + self.distill_weight * masked_mse(disc, torch.zeros_like(disc), w * normal)
            if bool(anomalous.any()):
                d_win = (disc * w).sum((1, 2)) / w.sum((1, 2)).clamp_min(1.0)  # (B,)
                loss = loss + self.anomaly_weight * F.relu(self.margin - d_win[anomalous]).mean()
        return loss

    def fit(self, X: Any, y: Any = None, *, resume: bool = False) -> SelfDistilledMAEDetector:
        """Fit on a training series (n, K); ``y`` (optional, 0/1 per time point) marks known anomalies."""
        super().fit(X, y, resume=resume)
        return self

    def _fit(self, X: np.ndarray, labels: Any = None) -> None:
        n, K = X.shape
        L = self.window
        y = np.zeros(n, dtype=bool) if labels is None else check_labels(labels, n).astype(bool)
        if labels is not None and self.variant != "full":
            raise fail(
                "labels",
                "the full variant (the margin acts on the teacher-student discrepancy)",
                f"variant={self.variant!r}",
                "Fit without y, or use variant='full'.",
            )
        train_part, val_part = windowed_time_split(X, self.validation_fraction, L)
        y_train = y[: len(train_part)]
        dev = resolve_device(self.device)
        self.device_ = str(dev)
        self.scale_a_, self.scale_b_ = fit_affine(self.scaler, train_part)
        self._build(K, dev)
        stride = max(1, int(self.train_stride))
        W, starts = sliding_windows(self._scale(train_part), L, stride)
        labelled = np.r_[0, np.cumsum(y_train)]
        anom = labelled[starts + L] > labelled[starts]  # windows holding a labelled anomaly
        tr_x = torch.tensor(W, dtype=torch.float32, device=dev)
        tr_a = torch.tensor(anom, device=dev)
        va_x = torch.tensor(
            sliding_windows(self._scale(val_part), L, max(1, L // 2))[0], dtype=torch.float32, device=dev
        )
        va_a = torch.zeros(len(va_x), dtype=torch.bool, device=dev)
        gen = torch.Generator(device=dev).manual_seed(self.random_state)
        rng = np.random.default_rng(self.random_state)

        def val_loss() -> float:  # the same masks every epoch
            vgen = torch.Generator(device=dev).manual_seed(self.random_state + 1)
            return chunked_mean(lambda s: self._loss(va_x[s], va_a[s], vgen), len(va_x), 256)

        settings = FitSettings(
            lr=self.lr,
            weight_decay=self.weight_decay,
            batch_size=self.batch_size,
            max_epochs=self.max_epochs,
            patience=self.patience,
            verbose=self.verbose,
            desc="SDMAE fit",
        )
        history, best = fit_loop(
            self._net,
            lambda idx: self._loss(tr_x[idx], tr_a[idx], gen),
            val_loss,
            len(tr_x),
            settings,
            rng,
            (gen,),
        )
        self.history_ = {**history, "best_epoch": best}
        # normalisers of the two score terms: their means on the validation tail
        err, disc = self._point_terms(val_part, normalise=False)
        self.error_ref_ = float(max(err.mean(), 1e-12))
        self.discrepancy_ref_ = float(max(disc.mean(), 1e-12)) if len(self._decoders) == 2 else 1.0

    def _fit_scores(self, X: np.ndarray) -> None:
        """Scores, threshold (contamination quantile) and decisions of the validation tail."""
        tail = time_split(X, self.validation_fraction)[1]
        self.decision_scores_ = self._score(tail)
        self.threshold_ = fit_threshold(self.decision_scores_, self.threshold, self.contamination)
        self.labels_ = apply_threshold(self.decision_scores_, self.threshold_)

    # ------------------------------------------------------------------ scoring
    def _window_terms(self, Xs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-window, per-time-step (error, discrepancy), each averaged over channels: two (B, L)
        arrays, and the window starts."""
        W, starts = sliding_windows(Xs, self.window, self._score_stride())
        err, disc = self._terms_of_windows(W)
        return err, disc, starts

    def _score_stride(self) -> int:
        return max(1, self.test_stride or self.window // 2)

    def _terms_of_windows(self, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(error, discrepancy), each (B, L) averaged over channels, of scaled windows (B, L, K)."""
        L, P = self.window, self.patch
        B, _, K = W.shape
        dev = torch.device(self.device_)
        if self.mask_ratio > 0:  # pass j masks patch j
            passes = torch.zeros(L // P, L, K, dtype=torch.bool, device=dev)
            for j in range(L // P):
                passes[j, j * P : (j + 1) * P] = True
        else:
            passes = torch.zeros(1, L, K, dtype=torch.bool, device=dev)
        n_pass = len(passes)
        err = np.empty((B, L), dtype=np.float64)
        disc = np.zeros((B, L), dtype=np.float64)
        per_call = max(1, 512 // n_pass)
        first = self._decoders[0]  # the teacher, unless variant="student"
        self._net.eval()
        with torch.no_grad():
            for i in tqdm(range(0, B, per_call), desc="SDMAE score", disable=not self.verbose):
                x = torch.tensor(W[i : i + per_call], dtype=torch.float32, device=dev)
                b = len(x)
                xb = x.repeat_interleave(n_pass, 0)
                mb = passes.repeat(b, 1, 1)
                out = self._net(xb, mb)
                resp = mb.float() if self.mask_ratio > 0 else torch.ones_like(mb, dtype=torch.float32)
                e = (((out[first] - xb) ** 2) * resp).view(b, n_pass, L, K).sum(1).mean(-1)  # (b, L)
                err[i : i + b] = e.double().cpu().numpy()
                if len(out) == 2:
                    d = (
                        (((out["student"] - out["teacher"]) ** 2) * resp)
                        .view(b, n_pass, L, K)
                        .sum(1)
                        .mean(-1)
                    )
                    disc[i : i + b] = d.double().cpu().numpy()
        return err, disc

    # ------------------------------------------------------------------ streaming (diffad.stream)
    def _stream_grid(self) -> tuple[int, int, str]:
        """(window, stride, reassembly rule) of the scoring windows."""
        if self.score_level != "point":
            raise fail(
                "score_level",
                '"point" for streaming',
                repr(self.score_level),
                "Stream a model fitted with score_level='point'.",
            )
        return self.window, self._score_stride(), "mean"

    def _stream_windows(self, windows: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Per-window outputs (B, L, 2) of unscaled windows (B, L, K): error and discrepancy."""
        err, disc = self._terms_of_windows(np.ascontiguousarray(self._scale(windows)))
        return np.stack([err, disc], axis=-1)

    def _stream_points(self, outputs: np.ndarray) -> tuple[np.ndarray, None, None]:
        """(scores, None, None) of points from their reassembled window outputs (n, 2)."""
        return outputs[:, 0] / self.error_ref_ + outputs[:, 1] / self.discrepancy_ref_, None, None

    def _point_terms(self, X: np.ndarray, normalise: bool = True) -> tuple[np.ndarray, np.ndarray]:
        err, disc, starts = self._window_terms(self._scale(X))
        if normalise:
            err, disc = err / self.error_ref_, disc / self.discrepancy_ref_
        n = len(X)
        return reassemble(err[..., None], starts, n)[:, 0], reassemble(disc[..., None], starts, n)[:, 0]

    def _check_scoring_input(self, X: np.ndarray) -> None:
        check_window(X.shape[0], self.window)

    def _score(self, X: np.ndarray) -> np.ndarray:
        if self.score_level == "sequence":
            starts, scores = self._window_scores(X)
            out = np.full(len(X), -np.inf)
            covered = starts[:, None] + np.arange(self.window)  # (windows, L) time points of each window
            np.maximum.at(out, covered.ravel(), np.repeat(scores, self.window))
            return out
        err, disc = self._point_terms(X)
        return err + disc

    def _window_scores(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        err, disc, starts = self._window_terms(self._scale(X))
        return starts, (err / self.error_ref_ + disc / self.discrepancy_ref_).mean(axis=1)

    # ------------------------------------------------------------------ public extras
    def window_scores(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Sequence-level scores: ``(starts, scores)``, one score per scoring window (for window classification)."""
        return self._window_scores(self._validate(X)[0])

    def score_terms(self, X: Any) -> dict[str, np.ndarray]:
        """The two point-level terms, each normalised by its validation mean: reconstruction error and
        teacher-student discrepancy (zeros for the single-decoder variants)."""
        err, disc = self._point_terms(self._validate(X)[0])
        return {"reconstruction": err, "discrepancy": disc}
