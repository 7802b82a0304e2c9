"""AnomalyDiffusion (Hu et al., AAAI 2024), with a small prior trained here instead of a pretrained
latent diffusion model.

Three stages, each a method of :class:`AnomalyDiffusion`:

1. ``fit_prior(normal)``: a conditional UNet learns the normal images (epsilon-prediction DDPM),
   conditioned on learned "normal" tokens and on layout tokens describing each image coarsely (see
   :class:`~diffad.imagegen.models.PriorCondition` for why). It is frozen afterwards.
2. ``fit_anomaly(images, masks, kinds)``: per anomaly type, learned anomaly tokens ``e_a`` and a mask
   encoder producing spatial tokens ``e_s`` are trained with the diffusion loss restricted to the mask
   region, on the few defective images; the prior does not change.
3. ``fit_masks(masks, kinds)``: a class-conditional mask diffusion model learns each type's mask
   distribution from the same few masks (with flips, rotations and shifts), so new masks are not
   copies.

``generate`` draws a mask, picks a normal image ``y`` and runs DDIM from noise with the condition
``[e_n, e_a, e_s]``; after every step the region outside the mask is replaced by ``y`` noised to the
next step's level, so the background stays the normal image and, at the end, equals it exactly.
Adaptive attention re-weighting (:mod:`diffad.imagegen.attention`) is on by default and switchable.

Images are uint8 arrays (n, 3, H, W) in and out; masks (n, H, W), nonzero = defect.
"""

from __future__ import annotations

import functools
import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..exceptions import DiffadError, NotFittedError, PersistenceError
from ..fsio import atomic_write_bytes, atomic_write_text, read_envelope
from ..training import resolve_device, seeded
from ..validation import fail
from .attention import ReweightState, attention_weights, install_reweighting
from .evaluate import defect_contrast
from .images import dihedral, to_uint8, to_unit
from .models import (
    AnomalyConditioner,
    ImageGenConfig,
    PriorCondition,
    build_mask_model,
    build_prior,
    make_scheduler,
)

__all__ = ["AnomalyDiffusion", "to_unit", "to_uint8", "dihedral"]


def shifted(
    x: torch.Tensor, m: torch.Tensor, most: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``x`` (B, C, H, W) and their masks ``m`` (B, 1, H, W) moved together by a random offset of
    up to ``most`` pixels in each direction, one offset per sample; the border is filled by reflection."""
    if most == 0:
        return x, m
    h, w = x.shape[-2:]
    both = F.pad(torch.cat([x, m], dim=1), (most,) * 4, mode="reflect")
    off = torch.randint(0, 2 * most + 1, (len(x), 2), generator=gen, device=x.device)
    rows = (off[:, 0, None] + torch.arange(h, device=x.device))[:, :, None]  # (B, h, 1)
    cols = (off[:, 1, None] + torch.arange(w, device=x.device))[:, None, :]  # (B, 1, w)
    out = both[torch.arange(len(x), device=x.device)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)
    return out[:, :-1], out[:, -1:]


def masked_noise_loss(
    pred: torch.Tensor, noise: torch.Tensor, m: torch.Tensor, per_defect: bool = False
) -> torch.Tensor:
    """The anomaly stage's loss: squared noise error on the mask pixels ``m`` (B, 1, H, W) only, averaged
    over every mask pixel of the batch, or (``per_defect``) over each defect's own pixels and then over
    the defects."""
    err = ((pred - noise) ** 2) * m
    if per_defect:
        return (err.flatten(1).sum(1) / (m.flatten(1).sum(1) * 3)).mean()
    return err.sum() / (m.sum() * 3)


def _shift_masks(m: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Move each mask (B, 1, H, W) by a random integer offset that keeps its pixels inside."""
    out = torch.zeros_like(m)
    H, W = m.shape[-2:]
    for i in range(m.shape[0]):
        ys, xs = torch.nonzero(m[i, 0] > 0, as_tuple=True)
        if len(ys) == 0:
            continue
        dy = int(torch.randint(-int(ys.min()), H - int(ys.max()), (1,), generator=gen))
        dx = int(torch.randint(-int(xs.min()), W - int(xs.max()), (1,), generator=gen))
        out[i] = torch.roll(m[i], shifts=(dy, dx), dims=(-2, -1))
    return out


IMAGEGEN_FORMAT = "diffad-imagegen"
#: What an image-generator folder may hold besides its envelope: stage weights, history, generated sets.
_OWN_ENTRIES = {
    "config.json",
    "history.json",
    "prior.pt",
    "anomaly.pt",
    "masks.pt",
    "data.json",
    "generated",
    "evaluation",
}


def check_model_folder(path: Path, *, strict: bool = False) -> None:
    """Saving adds to an image-generator folder stage by stage; a target that is a file, or a folder with
    other files and no envelope of ours, is refused (diffad never overwrites what it did not write).
    ``strict``: only a new or empty folder or one with our envelope (before the command line writes its
    ``data.json``); otherwise a folder holding only names the generator writes is accepted too."""
    if path.exists() and not path.is_dir():
        raise PersistenceError(
            f"save: expected a folder for the image generator, got {str(path)!r}, an existing file. Choose another path."
        )
    names = {p.name for p in path.iterdir()} if path.is_dir() else set()
    ours = read_envelope(path / "config.json", IMAGEGEN_FORMAT) is not None or (
        not strict and names <= _OWN_ENTRIES
    )
    if names and not ours:
        raise PersistenceError(
            f"save: expected a new or empty folder, or an image-generator folder of diffad's, got {str(path)!r} "
            f"holding {sorted(names)[:6]}. diffad never overwrites what it did not write: choose another path."
        )


def _save_tensors(state: dict, path: Path) -> None:
    """``torch.save`` through a temporary file and a rename: an interrupted save leaves the old file."""
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def _seeded(offset: int):
    """Run a fitting stage with torch's global stream (initial weights) seeded from ``seed + offset``
    and the caller's stream restored afterwards."""

    def wrap(method):
        @functools.wraps(method)
        def run(self, *args, **kwargs):
            with seeded(self.seed + offset, self.device_):
                return method(self, *args, **kwargs)

        return run

    return wrap


class AnomalyDiffusion:
    """Few-shot anomaly image generation: prior, anomaly embeddings, mask model, sampler.

    Parameters: ``config`` (:class:`ImageGenConfig`, default the CPU configuration), ``seed`` (all
    training and sampling randomness comes from generators seeded from it), ``device`` (None: CUDA
    when available), ``verbose`` (progress bars). The constructor only stores them, as the detectors'
    constructors do.

    Fitted attributes end in ``_``: ``prior_`` and ``prior_condition_`` (stage 1), ``kinds_`` and
    ``conditioner_`` (stage 2), ``mask_model_`` and ``mask_areas_`` (stage 3), ``outside_weights_``
    (:meth:`calibrate_reweighting`), ``history_`` and ``timings_`` (training losses and seconds per stage),
    ``prior_seed_``, ``device_``.
    """

    def __init__(
        self,
        config: ImageGenConfig | None = None,
        *,
        seed: int = 0,
        device: str | None = None,
        verbose: bool = False,
    ):
        self.config = config or ImageGenConfig()
        self.seed = int(seed)
        self.prior_seed_: int | None = None  # the seed the prior was trained with (``seed`` may change after)
        self.device = device
        self._device: torch.device | None = None
        self.verbose = verbose
        self.kinds_: list[str] = []
        # the stages' models: None until fitted (``_require`` checks before use)
        self.prior_: Any = None  # diffusers UNet2DConditionModel
        self.prior_condition_: Any = None  # PriorCondition
        self.conditioner_: Any = None  # AnomalyConditioner
        self.mask_model_: Any = None  # diffusers UNet2DModel
        self.history_: dict[str, list[float]] = {}
        self.mask_areas_: dict[str, tuple[float, float]] = {}
        self.outside_weights_: dict[str, float] = {}
        self.timings_: dict[str, float] = {}

    @property
    def device_(self) -> torch.device:
        """The device the models live on: ``device`` resolved on first use, as the detectors' ``fit``
        resolves it (None: CUDA when available)."""
        if self._device is None:
            self._device = resolve_device(self.device)
        return self._device

    # ------------------------------------------------------------------ helpers
    def _images(self, images: np.ndarray, what: str) -> torch.Tensor:
        a = np.asarray(images)
        s = self.config.size
        if a.ndim != 4 or a.shape[1] != 3 or a.shape[2:] != (s, s) or a.dtype != np.uint8:
            raise fail(
                what,
                f"uint8 images of shape (n, 3, {s}, {s})",
                f"{a.dtype} {a.shape}",
                f"Load the images at size {s} (the configuration's image size).",
            )
        if len(a) == 0:
            raise fail(what, "at least one image", "none", "Pass some images.")
        return to_unit(a).to(self.device_)

    def _masks(self, masks: np.ndarray, n: int, what: str = "masks") -> torch.Tensor:
        m = np.asarray(masks)
        s = self.config.size
        if m.shape != (n, s, s):
            raise fail(
                what, f"shape ({n}, {s}, {s})", repr(m.shape), "Give one mask per image at the image size."
            )
        return torch.as_tensor(m > 0, dtype=torch.float32, device=self.device_)[:, None]

    def _kind_index(self, kinds, n: int) -> torch.Tensor:
        kinds = list(kinds)
        if len(kinds) != n:
            raise fail("kinds", f"{n} anomaly-type names", f"{len(kinds)}", "Give one type per image.")
        return torch.as_tensor([self.kinds_.index(k) for k in kinds], device=self.device_)

    def _generator(self, offset: int) -> torch.Generator:
        return torch.Generator(device=self.device_).manual_seed(self.seed * 1000 + offset)

    def _train(self, params, loss_fn, steps: int, lr: float, stage: str, offset: int) -> None:
        params = list(params)
        opt = torch.optim.Adam(params, lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=lr * 0.05)
        gen = self._generator(offset)
        losses = []
        t0 = time.perf_counter()
        for _ in tqdm(range(steps), desc=stage, disable=not self.verbose, leave=False):
            loss = loss_fn(gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        self.history_[stage] = losses
        self.timings_[stage] = time.perf_counter() - t0

    def _noised(self, x0: torch.Tensor, gen: torch.Generator, sched):
        t = torch.randint(0, self.config.train_timesteps, (x0.shape[0],), generator=gen, device=self.device_)
        noise = torch.randn(x0.shape, generator=gen, device=self.device_)
        return sched.add_noise(x0, noise, t), t, noise

    def _require(self, *parts: str) -> None:
        missing = [p for p in parts if getattr(self, p + "_") is None]
        if missing:
            steps = {
                "prior": "fit_prior (diffad imagegen train-prior)",
                "conditioner": "fit_anomaly (diffad imagegen train-anomaly)",
                "mask_model": "fit_masks (diffad imagegen train-anomaly)",
            }
            raise NotFittedError(
                "AnomalyDiffusion is not fitted yet: expected fitted stage(s) "
                f"{missing}, got none. Run " + ", then ".join(steps[p] for p in missing) + "."
            )

    # ------------------------------------------------------------------ stage 1: prior
    @_seeded(0)
    def fit_prior(self, normal: np.ndarray) -> AnomalyDiffusion:
        """Train the conditional UNet on defect-free images (uint8, (n, 3, H, W))."""
        cfg = self.config
        x = self._images(normal, "normal images")
        self.prior_seed_ = self.seed
        self.prior_ = build_prior(cfg).to(self.device_)
        self.prior_condition_ = PriorCondition(cfg).to(self.device_)
        sched = make_scheduler(cfg)
        B = cfg.batch_size

        def loss_fn(gen):
            idx = torch.randint(0, len(x), (B,), generator=gen, device=self.device_)
            k = torch.randint(0, 8, (B,), generator=gen, device=self.device_)
            x0 = dihedral(x[idx], k)
            keep = torch.rand(B, generator=gen, device=self.device_) >= cfg.layout_dropout
            xt, t, noise = self._noised(x0, gen, sched)
            return torch.nn.functional.mse_loss(
                self.prior_(xt, t, self.prior_condition_(x0, keep)).sample, noise
            )

        self.prior_.train()
        params = list(self.prior_.parameters()) + list(self.prior_condition_.parameters())
        self._train(params, loss_fn, cfg.prior_steps, cfg.prior_lr, "prior", 1)
        self.prior_.eval().requires_grad_(False)
        self.prior_condition_.eval().requires_grad_(False)
        self.conditioner_ = None  # a new prior invalidates embeddings learned on an old one
        return self

    # ------------------------------------------------------------------ stage 2: anomaly embeddings
    @_seeded(1)
    def fit_anomaly(self, images: np.ndarray, masks: np.ndarray, kinds) -> AnomalyDiffusion:
        """Learn ``e_a`` per type and the mask encoder on the few defective images, prior frozen; the
        loss is the epsilon MSE on mask pixels only, averaged as ``config.anomaly_loss`` says (over
        all mask pixels of a batch, or per defect and then over defects). Each draw flips or rotates
        a defect and, with ``config.anomaly_shift``, moves it (see :func:`shifted`)."""
        self._require("prior")
        cfg = self.config
        x = self._images(images, "defective images")
        m = self._masks(masks, len(x))
        if (m.flatten(1).sum(1) == 0).any():
            raise fail(
                "masks",
                "at least one defect pixel in every mask",
                "an empty mask",
                "Drop defect-free images from the few-shot set.",
            )
        self.kinds_ = sorted(set(kinds))
        self.outside_weights_ = {}  # calibrated for the old embeddings
        kind = self._kind_index(kinds, len(x))
        self.conditioner_ = AnomalyConditioner(cfg, len(self.kinds_), self.prior_condition_).to(self.device_)
        sched = make_scheduler(cfg)
        B = cfg.batch_size

        def loss_fn(gen):
            idx = torch.randint(0, len(x), (B,), generator=gen, device=self.device_)
            k = torch.randint(0, 8, (B,), generator=gen, device=self.device_)
            xi, mi = shifted(dihedral(x[idx], k), dihedral(m[idx], k), cfg.anomaly_shift, gen)
            xt, t, noise = self._noised(xi, gen, sched)
            pred = self.prior_(xt, t, self.conditioner_(kind[idx], mi, xi)).sample
            return masked_noise_loss(pred, noise, mi, per_defect=cfg.anomaly_loss == "defect")

        self.conditioner_.train()
        self._train(self.conditioner_.parameters(), loss_fn, cfg.anomaly_steps, cfg.anomaly_lr, "anomaly", 2)
        self.conditioner_.eval().requires_grad_(False)
        return self

    # ------------------------------------------------------------------ stage 3: masks
    @_seeded(2)
    def fit_masks(self, masks: np.ndarray, kinds) -> AnomalyDiffusion:
        """Train the class-conditional mask diffusion model on the few masks, augmented with the eight
        flips/rotations and random shifts."""
        cfg = self.config
        kinds = list(kinds)
        if not self.kinds_:
            self.kinds_ = sorted(set(kinds))
        unknown = sorted(set(kinds) - set(self.kinds_))
        if unknown:
            raise fail(
                "mask kinds",
                f"types among {self.kinds_}",
                repr(unknown),
                "Fit the anomaly embeddings on the same types.",
            )
        m = self._masks(masks, len(kinds))
        kind = self._kind_index(kinds, len(kinds))
        areas = m.flatten(1).sum(1).cpu().numpy()
        self.mask_areas_ = {
            k: (float(areas[kind.cpu().numpy() == i].min()), float(areas[kind.cpu().numpy() == i].max()))
            for i, k in enumerate(self.kinds_)
            if (kind == i).any()
        }
        self.mask_model_ = build_mask_model(cfg, len(self.kinds_)).to(self.device_)
        sched = make_scheduler(cfg)
        B = cfg.batch_size

        def loss_fn(gen):
            idx = torch.randint(0, len(m), (B,), generator=gen, device=self.device_)
            k = torch.randint(0, 8, (B,), generator=gen, device=self.device_)
            mi = _shift_masks(dihedral(m[idx], k), gen) * 2 - 1
            xt, t, noise = self._noised(mi, gen, sched)
            return torch.nn.functional.mse_loss(self.mask_model_(xt, t, class_labels=kind[idx]).sample, noise)

        self.mask_model_.train()
        self._train(self.mask_model_.parameters(), loss_fn, cfg.mask_steps, cfg.mask_lr, "masks", 3)
        self.mask_model_.eval().requires_grad_(False)
        return self

    def fit(self, normal: np.ndarray, images: np.ndarray, masks: np.ndarray, kinds) -> AnomalyDiffusion:
        """All three stages."""
        return self.fit_prior(normal).fit_anomaly(images, masks, kinds).fit_masks(masks, kinds)

    # ------------------------------------------------------------------ sampling
    def _clean_mask(self, m: np.ndarray, kind: str) -> np.ndarray | None:
        """Drop specks (components under a quarter of the type's smallest training mask); None when the
        rest is empty or its area is outside [0.5 x smallest, 2 x largest] training area of the type."""
        from scipy import ndimage

        lo, hi = self.mask_areas_[kind]
        lab, n = ndimage.label(m)
        if n == 0:
            return None
        sizes = np.bincount(lab.ravel())[1:]
        keep = np.flatnonzero(sizes >= max(1.0, lo / 4)) + 1
        out = np.isin(lab, keep)
        return out.astype(np.uint8) if 0.5 * lo <= out.sum() <= 2 * hi else None

    @torch.no_grad()
    def generate_masks(self, kinds, *, seed: int = 0, max_tries: int = 50) -> np.ndarray:
        """One new mask per entry of ``kinds`` (uint8 (n, H, W), 1 = defect).

        Ancestral sampling (DDIM with eta = 1, ``mask_sample_steps`` steps) of the mask model, then a
        support check: specks smaller than a quarter of the type's smallest training mask are dropped,
        and draws whose area is below half the type's smallest or above twice its largest training
        mask are redrawn (at most ``max_tries`` rounds). Deterministic eta = 0 sampling was measured to
        give blurred, half-filled masks with this small model (docs/benchmarks.md)."""
        self._require("mask_model")
        kinds = list(kinds)
        n, s = len(kinds), self.config.size
        label = self._kind_index(kinds, n)
        gen = torch.Generator(device=self.device_).manual_seed(seed)
        out = np.zeros((n, s, s), np.uint8)
        todo = np.arange(n)
        sched = make_scheduler(self.config, "ddim")
        for _ in range(max_tries):
            x = torch.randn((len(todo), 1, s, s), generator=gen, device=self.device_)
            sched.set_timesteps(self.config.mask_sample_steps)
            for t in sched.timesteps:
                eps = self.mask_model_(x, t, class_labels=label[todo]).sample
                x = sched.step(eps, t, x, eta=1.0, generator=gen).prev_sample
            drawn = (x[:, 0] > 0).cpu().numpy()
            failed = []
            for i, m in zip(todo, drawn, strict=True):
                clean = self._clean_mask(m, kinds[i])
                if clean is None:
                    failed.append(i)
                else:
                    out[i] = clean
            todo = np.asarray(failed, dtype=int)
            if len(todo) == 0:
                return out
        raise DiffadError(
            f"generate_masks: expected a usable mask for every request, got none in {max_tries} rounds for {len(todo)} of {n} "
            "requests. Train the mask model longer (mask_steps), or pass masks."
        )

    @torch.no_grad()
    def generate(
        self,
        normal: np.ndarray,
        n: int,
        *,
        kinds=None,
        masks: np.ndarray | None = None,
        seed: int = 0,
        reweight: bool = True,
        batch_size: int = 64,
        conditions: torch.Tensor | None = None,
    ) -> dict:
        """Generate ``n`` anomalous images from the normal images ``normal``.

        ``kinds``: the type of each sample (default: the fitted types in turn); ``masks``: given masks
        instead of drawn ones; ``reweight``: adaptive attention re-weighting, with the anomaly tokens
        outside the mask weighted by ``outside_weights`` (0 for a type not calibrated: the paper's
        formula; see :meth:`calibrate_reweighting`). Returns a dict with ``images`` (uint8 (n, 3, H, W)), ``masks`` (uint8
        (n, H, W)), ``kinds`` and ``normal_index`` (which normal image each sample edits).
        ``conditions``: cross-attention conditions (n, tokens, cross_dim) laid out as the fitted ones, to
        sample with instead of theirs (for diagnostics, e.g. ``benchmarks/imagegen_oracle.py``).
        """
        self._require("prior", "conditioner")
        if n < 1:
            raise fail("n", "a positive number of images", repr(n), "Ask for at least one image.")
        kinds = [self.kinds_[i % len(self.kinds_)] for i in range(n)] if kinds is None else list(kinds)
        label = self._kind_index(kinds, n)
        if masks is None:
            masks = self.generate_masks(kinds, seed=seed + 1)
        m_all = self._masks(masks, n)
        if conditions is not None and (conditions.ndim != 3 or len(conditions) != n):
            raise fail(
                "conditions",
                f"a tensor of shape ({n}, tokens, cross_dim)",
                str(tuple(conditions.shape)),
                "Give one condition per image.",
            )
        y_all = self._images(normal, "normal images")
        rng = np.random.default_rng(seed)
        pick = rng.integers(0, len(y_all), size=n)
        gen = torch.Generator(device=self.device_).manual_seed(seed)
        outside = torch.as_tensor([self.outside_weights_.get(k, 0.0) for k in kinds], device=self.device_)
        state = ReweightState(tokens=self.conditioner_.anomaly_slice, image_shape=(self.config.size,) * 2)
        install_reweighting(self.prior_, state)
        sched = make_scheduler(self.config, "ddim")
        out = []
        try:
            for lo in tqdm(range(0, n, batch_size), desc="generate", disable=not self.verbose, leave=False):
                sl = slice(lo, min(lo + batch_size, n))
                state.outside = outside[sl]
                y = y_all[pick[sl]]
                cond = (
                    self.conditioner_(label[sl], m_all[sl], y)
                    if conditions is None
                    else conditions[sl].to(self.device_)
                )
                out.append(self._sample(y, m_all[sl], cond, state, sched, gen, reweight))
        finally:
            from diffusers.models.attention_processor import AttnProcessor2_0

            self.prior_.set_attn_processor(AttnProcessor2_0())
        return {
            "images": to_uint8(torch.cat(out)),
            "masks": (np.asarray(masks) > 0).astype(np.uint8),
            "kinds": kinds,
            "normal_index": pick,
        }

    def _sample(self, y, m, cond, state: ReweightState, sched, gen, reweight: bool) -> torch.Tensor:
        sched.set_timesteps(self.config.sample_steps)
        steps = list(sched.timesteps)
        alpha_bar = sched.alphas_cumprod.to(self.device_)
        scale = float(self.config.guidance)
        ref = (
            self.prior_condition_(y) if scale != 1.0 else None
        )  # guidance's reference: the prior's view of y
        x = torch.randn(y.shape, generator=gen, device=self.device_)
        x0 = None
        for i, t in enumerate(steps):
            last = i + 1 == len(steps)
            for run in range(1 if last else self.config.resample):
                if run:  # back to step t's noise level: x_t ~ q(x_t | x_{t'}) of the blended x_{t'}
                    a = alpha_bar[t] / alpha_bar[steps[i + 1]]
                    x = a.sqrt() * x + (1 - a).sqrt() * torch.randn(
                        y.shape, generator=gen, device=self.device_
                    )
                state.weights = attention_weights(y, x0, m) if reweight else None
                eps = self.prior_(x, t, cond).sample
                if ref is not None:
                    weights, state.weights = state.weights, None  # re-weighting acts on anomaly tokens only
                    eps_ref = self.prior_(x, t, ref).sample
                    state.weights = weights
                    eps = eps_ref + scale * (eps - eps_ref)
                step = sched.step(eps, t, x, eta=0.0)
                x, x0 = step.prev_sample, step.pred_original_sample
                if last:
                    known = y
                else:
                    noise = torch.randn(y.shape, generator=gen, device=self.device_)
                    known = sched.add_noise(y, noise, steps[i + 1].reshape(1))
                x = m * x + (1 - m) * known
        state.weights = None
        return x

    def calibrate_reweighting(
        self,
        normal: np.ndarray,
        images: np.ndarray,
        masks: np.ndarray,
        kinds,
        *,
        grid=(0.0, 0.25, 0.5, 0.75, 1.0),
        n_per_kind: int = 16,
        seed: int = 0,
    ) -> dict:
        """Choose per anomaly type the weight of the anomaly tokens outside the mask
        (``outside_weights``), so that generated defects stand out from their surroundings about as much
        as the real ones do.

        For every value in ``grid`` it generates ``n_per_kind`` pairs per type (the same masks, normal
        images and noise for every value) and measures their
        :func:`~diffad.imagegen.evaluate.defect_contrast`; per type it keeps the value whose median
        contrast is closest, on a log scale, to the median contrast of the type's real defective
        ``images`` with their ``masks`` (the few-shot training images: no held-out image is read).
        Returns ``{"real": {type: contrast}, "grid": {value: {type: contrast}}, "chosen": {type: value}}``.
        """
        self._require("prior", "conditioner", "mask_model")
        grid = [float(g) for g in grid]
        if not grid or any(not 0.0 <= g <= 1.0 for g in grid):
            raise fail(
                "calibration grid",
                "values in [0, 1]",
                repr(grid),
                "0 is the paper's re-weighting, 1 no suppression outside the mask.",
            )
        if n_per_kind < 1:
            raise fail("n_per_kind", "a positive number", repr(n_per_kind), "Use at least 1.")
        kinds = np.asarray(list(kinds))
        real_c = defect_contrast(images, masks)
        missing = sorted(set(self.kinds_) - set(kinds))
        if len(real_c) != len(kinds) or missing:
            raise fail(
                "calibration images",
                f"real defective images of every type {self.kinds_}, one type per image",
                f"{len(real_c)} images, {len(kinds)} types, missing {missing}",
                "Pass the few-shot training split.",
            )
        real = {k: float(np.nanmedian(real_c[kinds == k])) for k in self.kinds_}
        draw = [k for k in self.kinds_ for _ in range(n_per_kind)]
        drawn = np.asarray(draw)
        draw_masks = self.generate_masks(draw, seed=seed + 1)
        table, previous = {}, self.outside_weights_
        try:
            for g in grid:
                self.outside_weights_ = dict.fromkeys(self.kinds_, g)
                out = self.generate(normal, len(draw), kinds=draw, masks=draw_masks, seed=seed)
                c = defect_contrast(out["images"], out["masks"])
                table[g] = {k: float(np.nanmedian(c[drawn == k])) for k in self.kinds_}
        finally:
            self.outside_weights_ = previous

        def distance(g: float, k: str) -> float:
            return abs(float(np.log(table[g][k] / real[k])))

        chosen = {k: min(grid, key=lambda g: distance(g, k)) for k in self.kinds_}
        self.outside_weights_ = chosen
        return {"real": real, "grid": table, "chosen": chosen}

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write the fitted parts to folder ``path`` (``config.json``, ``history.json`` and one
        ``*.pt`` state dict per fitted stage)."""
        path = Path(path)
        check_model_folder(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": IMAGEGEN_FORMAT,
            "version": 1,
            "config": self.config.to_dict(),
            "seed": self.seed,
            "prior_seed": self.prior_seed_,
            "kinds": self.kinds_,
            "mask_areas": self.mask_areas_,
            "outside_weights": self.outside_weights_,
            "timings": self.timings_,
        }
        if self.prior_ is not None:
            _save_tensors(
                {"unet": self.prior_.state_dict(), "condition": self.prior_condition_.state_dict()},
                path / "prior.pt",
            )
        if self.conditioner_ is not None:
            _save_tensors(self.conditioner_.state_dict(), path / "anomaly.pt")
        if self.mask_model_ is not None:
            _save_tensors(self.mask_model_.state_dict(), path / "masks.pt")
        atomic_write_text(path / "history.json", json.dumps(self.history_))
        atomic_write_text(path / "config.json", json.dumps(meta, indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path, *, device: str | None = None, verbose: bool = False) -> AnomalyDiffusion:
        """Read a folder written by :meth:`save`."""
        path = Path(path)
        if not (path / "config.json").is_file():
            raise PersistenceError(
                f"load: expected {path / 'config.json'} (an image-generator folder), not found. "
                "Train a model first (diffad imagegen train-prior)."
            )
        meta = read_envelope(path / "config.json", IMAGEGEN_FORMAT)
        if meta is None:
            raise PersistenceError(
                f"load: expected format {IMAGEGEN_FORMAT!r} in {path / 'config.json'}, got another file. "
                "This folder was not written by diffad's image generator."
            )
        self = cls(
            ImageGenConfig.from_dict(meta["config"]), seed=meta["seed"], device=device, verbose=verbose
        )
        self.prior_seed_ = meta.get("prior_seed", meta["seed"])
        self.kinds_ = list(meta["kinds"])
        self.timings_ = meta.get("timings", {})
        self.mask_areas_ = {k: tuple(v) for k, v in meta.get("mask_areas", {}).items()}
        self.outside_weights_ = {k: float(v) for k, v in meta.get("outside_weights", {}).items()}
        if (path / "history.json").is_file():
            self.history_ = json.loads((path / "history.json").read_text())

        def read(name):
            try:
                return torch.load(path / name, map_location=self.device_, weights_only=True)
            except Exception as exc:  # torch raises RuntimeError / UnpicklingError on damaged files
                raise PersistenceError(
                    f"load: {path / name} is corrupt or truncated ({type(exc).__name__}). Train or save again."
                ) from None

        if (path / "prior.pt").is_file():
            st = read("prior.pt")
            self.prior_ = build_prior(self.config).to(self.device_)
            self.prior_.load_state_dict(st["unet"])
            self.prior_.eval().requires_grad_(False)
            self.prior_condition_ = PriorCondition(self.config).to(self.device_)
            self.prior_condition_.load_state_dict(st["condition"])
            self.prior_condition_.eval().requires_grad_(False)
        if (path / "anomaly.pt").is_file():
            st = read("anomaly.pt")
            self.conditioner_ = AnomalyConditioner(self.config, len(self.kinds_), self.prior_condition_).to(
                self.device_
            )
            self.conditioner_.load_state_dict(st)
            self.conditioner_.eval().requires_grad_(False)
        if (path / "masks.pt").is_file():
            self.mask_model_ = build_mask_model(self.config, len(self.kinds_)).to(self.device_)
            self.mask_model_.load_state_dict(read("masks.pt"))
            self.mask_model_.eval().requires_grad_(False)
        return self

    @property
    def n_parameters(self) -> dict[str, int]:
        parts = {"prior": self.prior_, "anomaly": self.conditioner_, "masks": self.mask_model_}
        return {k: sum(p.numel() for p in v.parameters()) for k, v in parts.items() if v is not None}
