"""Masks that choose which entries of a window the model must impute.

Every function returns a float tensor of shape (B, K, L) with 1 = masked (imputation target) and
0 = conditioning, and takes an explicit ``torch.Generator`` when it is random.
"""

from __future__ import annotations

import torch

from ..validation import fail

__all__ = ["grating_mask", "random_mask", "forecast_mask", "full_mask", "strip_ids"]


def strip_ids(L: int, n_strips: int, device=None) -> torch.Tensor:
    """Strip index (0..n_strips-1) of each of the L time steps: equal strips along time."""
    if not 1 <= n_strips <= L:
        raise fail("n_strips", f"an integer in [1, window={L}]", repr(n_strips), "Use fewer strips.")
    return (torch.arange(L, device=device) * n_strips) // L


def grating_mask(policy: torch.Tensor, K: int, L: int, n_strips: int) -> torch.Tensor:
    """Grating masks (ImDiffusion): policy 0 masks the even strips, policy 1 the odd strips.

    ``policy`` is (B,) of 0/1; the two policies are complementary, so every point is imputed exactly once
    across the two passes.
    """
    odd = (strip_ids(L, n_strips, policy.device) % 2).float()  # (L,)
    m = torch.where(policy[:, None] == 0, 1.0 - odd, odd)  # (B, L)
    return m[:, None, :].expand(-1, K, -1).contiguous()


def random_mask(
    B: int, K: int, L: int, ratio: float, generator: torch.Generator | None = None, device=None
) -> torch.Tensor:
    """Independent random point masks: each entry masked with probability ``ratio`` (the published
    ImDiffusion code trains with ratio 0.7)."""
    return (torch.rand((B, K, L), generator=generator, device=device) < ratio).float()


def forecast_mask(B: int, K: int, L: int, n_strips: int, device=None) -> torch.Tensor:
    """Forecasting: only the final strip is masked."""
    last = (strip_ids(L, n_strips, device) == n_strips - 1).float()
    return last.expand(B, K, L).contiguous()


def full_mask(B: int, K: int, L: int, device=None) -> torch.Tensor:
    """Reconstruction: every entry is a target."""
    return torch.ones((B, K, L), device=device)
