"""DDPM / DDIM step rules. The scheduler owns the schedule; the network only predicts epsilon.

Equation numbers refer to Ho et al., "Denoising Diffusion Probabilistic Models" (2020) and Song et al.,
"Denoising Diffusion Implicit Models" (2021).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch

from ..validation import check_option
from .schedules import make_betas

__all__ = ["DDPMScheduler", "PREDICTION_TYPES", "SAMPLERS"]

PREDICTION_TYPES = ("eps", "x0")  # what the network predicts: the noise, or the clean values
SAMPLERS = ("ddpm", "ddim")


class DDPMScheduler:
    """Holds betas, alphas and cumulative alphas (as float32 tensors on ``device``) and the step rules.

    Index convention: ``t`` in ``0..T-1``; ``alpha_bar[t]`` is the product of ``alpha[0..t]``.
    ``prediction_type``: what the network outputs (``"eps"``, the noise; ``"x0"``, the clean values);
    ``sampler``: the reverse step of :meth:`reverse_step` (ancestral ``"ddpm"`` or deterministic ``"ddim"``).
    """

    def __init__(
        self,
        n_steps: int = 50,
        beta_start: float = 1e-4,
        beta_end: float = 0.5,
        kind: str = "quad",
        device: str | torch.device = "cpu",
        prediction_type: str = "eps",
        sampler: str = "ddpm",
    ):
        check_option(prediction_type, PREDICTION_TYPES, name="prediction")
        check_option(sampler, SAMPLERS, name="sampler")
        self.prediction_type, self.sampler = prediction_type, sampler
        self.timesteps: list[int] = list(range(n_steps - 1, -1, -1))  # set_timesteps changes them
        betas = make_betas(n_steps, beta_start, beta_end, kind)
        alphas = 1.0 - betas
        alpha_bar = np.cumprod(alphas)
        self.n_steps = n_steps
        self.betas_np, self.alpha_bar_np = betas, alpha_bar
        to = lambda a: torch.tensor(a, dtype=torch.float32, device=device)  # noqa: E731
        self.betas, self.alphas, self.alpha_bar = to(betas), to(alphas), to(alpha_bar)
        alpha_bar_prev = np.r_[1.0, alpha_bar[:-1]]
        # posterior variance of q(x_{t-1} | x_t, x_0), eq. (7): beta_t (1 - abar_{t-1}) / (1 - abar_t)
        self.posterior_var = to(betas * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar))
        self.alpha_bar_prev = to(alpha_bar_prev)

    @staticmethod
    def _bcast(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return v.reshape(-1, *([1] * (like.ndim - 1)))

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        """q(x_t | x_0), eq. (4): sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps. ``t`` is (B,) or an int."""
        ab = self.alpha_bar[t] if torch.is_tensor(t) else self.alpha_bar[t].expand(x0.shape[0])
        ab = self._bcast(ab, x0)
        return ab.sqrt() * x0 + (1.0 - ab).sqrt() * noise

    def predict_x0(self, eps: torch.Tensor, t: int, x_t: torch.Tensor) -> torch.Tensor:
        """The x_0 estimate implied by epsilon, inverting eq. (4): (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)."""
        ab = self.alpha_bar[t]
        return (x_t - (1.0 - ab).sqrt() * eps) / ab.sqrt()

    def eps_from_x0(self, x0_hat: torch.Tensor, t: int, x_t: torch.Tensor) -> torch.Tensor:
        """The epsilon implied by an x_0 estimate at step t, eq. (4) solved for the noise."""
        ab = self.alpha_bar[t]
        return (x_t - ab.sqrt() * x0_hat) / (1.0 - ab).sqrt()

    def step(
        self,
        eps: torch.Tensor,
        t: int,
        x_t: torch.Tensor,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One ancestral DDPM step x_t -> x_{t-1} (Algorithm 2): mean of eq. (11), variance of eq. (7).

        The step's fresh noise z is drawn from ``generator``, or given as ``noise`` (shape of ``x_t``)."""
        beta, alpha, ab = self.betas[t], self.alphas[t], self.alpha_bar[t]
        mean = (x_t - beta / (1.0 - ab).sqrt() * eps) / alpha.sqrt()
        if t == 0:
            return mean
        z = (
            noise
            if noise is not None
            else torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)
        )
        return mean + self.posterior_var[t].sqrt() * z

    def ddim_step(
        self,
        eps: torch.Tensor,
        t: int,
        t_prev: int,
        x_t: torch.Tensor,
        clip: tuple[float, float] | None = None,
    ) -> torch.Tensor:
        """Deterministic DDIM step (eta = 0) from step t to an earlier step t_prev (-1 means x_0), eq. (12).

        At high noise levels sqrt(abar_t) is tiny and the x_0 estimate explodes; ``clip`` = (lo, hi) bounds
        it (as diffusers' ``clip_sample``), and epsilon is re-derived from the clipped estimate.
        """
        ab_prev = self.alpha_bar[t_prev] if t_prev >= 0 else torch.ones((), device=x_t.device)
        x0_hat = self.predict_x0(eps, t, x_t)
        if clip is not None:
            x0_hat = x0_hat.clamp(*clip)
            eps = self.eps_from_x0(x0_hat, t, x_t)
        return ab_prev.sqrt() * x0_hat + (1.0 - ab_prev).sqrt() * eps

    def set_timesteps(self, start: int, record: Sequence[int] = (), ddim_jumps: int = 2) -> list[int]:
        """The reverse steps a sampling run visits, from ``start`` down, largest first; also kept as
        ``self.timesteps`` (as diffusers' schedulers do).

        ``"ddpm"``: every step from ``start`` to 0. ``"ddim"``: ``ddim_jumps`` evenly spaced jumps from
        ``start`` to the earliest recorded step, then every step in ``record`` (the steps an ensemble
        reads; at least one).
        """
        if self.sampler == "ddpm":
            steps = list(range(start, -1, -1))
        else:
            if not record:
                raise ValueError("set_timesteps: the DDIM schedule needs at least one recorded step")
            last = max(record)
            jumps = np.unique(np.linspace(start, last, ddim_jumps + 1).round().astype(int))[::-1].tolist()
            steps = sorted(set(jumps[:-1]) | set(record), reverse=True)
        self.timesteps = steps
        return steps

    def with_settings(self, *, prediction_type: str, sampler: str) -> DDPMScheduler:
        """The same schedule (tensors shared) with another prediction type or sampler."""
        check_option(prediction_type, PREDICTION_TYPES, name="prediction")
        check_option(sampler, SAMPLERS, name="sampler")
        other = copy.copy(self)
        other.prediction_type, other.sampler = prediction_type, sampler
        return other

    def to_eps(
        self, model_output: torch.Tensor, t: int, x_t: torch.Tensor, clip: tuple[float, float]
    ) -> torch.Tensor:
        """The noise implied by the network's output at step t: the output itself for ``"eps"``; for
        ``"x0"``, eq. (4) solved for the noise from the clean-value estimate bounded by ``clip``."""
        if self.prediction_type == "eps":
            return model_output
        return self.eps_from_x0(model_output.clamp(*clip), t, x_t)

    def reverse_step(
        self, eps: torch.Tensor, t: int, t_prev: int, x_t: torch.Tensor, noise, clip: tuple[float, float]
    ) -> torch.Tensor:
        """x_t -> the sample at ``t_prev`` (``t - 1`` for DDPM; -1 means x_0) with this scheduler's
        sampler; ``noise()`` draws the ancestral step's fresh noise (DDPM, t > 0 only)."""
        if self.sampler == "ddim":
            return self.ddim_step(eps, t, t_prev, x_t, clip)
        return self.step(eps, t, x_t, noise=noise() if t > 0 else None)
