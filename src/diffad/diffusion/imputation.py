"""The unconditional imputation sampling loop of ImDiffusion (the steps it visits come from
:meth:`~diffad.diffusion.DDPMScheduler.set_timesteps`).

The network is a callable ``model(noisy_observed, sample, t) -> output`` that knows nothing of betas;
the scheduler (:class:`~diffad.diffusion.DDPMScheduler`) owns the schedule and the step rules, the
prediction type (noise or clean values) and the sampler (ancestral DDPM or deterministic DDIM), as
diffusers' schedulers do. At every reverse step t the observed region holds the observed values noised
forward to level t with fresh noise (the network never sees clean values); the imputed region holds the
sampler's own sample.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ..validation import check_option
from .ddpm import DDPMScheduler

__all__ = ["impute", "OUTPUTS"]

OUTPUTS = ("x0", "sample")


def impute(
    model: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    scheduler: DDPMScheduler,
    x0: torch.Tensor,
    cond: torch.Tensor,
    sample: torch.Tensor,
    timesteps: Sequence[int],
    record: Sequence[int],
    noise: Callable[[], torch.Tensor],
    clip: tuple[float, float],
    output: str = "x0",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the reverse process over ``timesteps``; returns (recorded outputs (R, B, K, L), final sample).

    ``x0`` (B, K, L) holds the observed values (only read where ``cond`` is 1), ``sample`` the starting
    sample (pure noise, or the input noised to the first step). ``noise()`` draws fresh standard normal
    noise of x0's shape. At each step in ``record`` the output is stored: the clean-value estimate
    (``"x0"``, bounded by ``clip``) or the step's sample x_{t-1} (``"sample"``). The imputed region is the
    only part of the sample that is generated; the rest is kept at zero.
    """
    check_option(output, OUTPUTS, name="ensemble_output")
    record = list(record)
    out = torch.empty((len(record), *x0.shape), device=x0.device)
    x = sample
    steps = list(timesteps)
    for j, t in enumerate(steps):
        t_vec = torch.full((x0.shape[0],), t, device=x0.device, dtype=torch.long)
        noisy = scheduler.add_noise(x0, noise(), t)  # q(x_t | x_0) of the observed values, fresh noise
        eps = scheduler.to_eps(model(noisy, x, t_vec).float(), t, x, clip)
        if t in record and output == "x0":
            out[record.index(t)] = scheduler.predict_x0(eps, t, x).clamp(*clip)
        t_prev = steps[j + 1] if j + 1 < len(steps) else -1
        x = scheduler.reverse_step(eps, t, t_prev, x, noise, clip)
        x = x * (1.0 - cond)
        if t in record and output == "sample":
            out[record.index(t)] = x
    return out, x
