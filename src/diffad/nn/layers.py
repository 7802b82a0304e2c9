"""Shared building blocks: sinusoidal embeddings and a transformer encoder layer on
``torch.nn.functional.scaled_dot_product_attention``."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["sinusoidal", "EncoderLayer"]


def sinusoidal(pos: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of positions ``pos`` (any shape) -> (*pos.shape, dim)."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, device=pos.device, dtype=torch.float32) / half
    )  # (dim/2,)
    ang = pos.float()[..., None] * freqs  # (..., dim/2)
    return torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1)


class EncoderLayer(nn.Module):
    """Post-norm transformer encoder layer (as ``nn.TransformerEncoderLayer``, GELU), attention through
    ``scaled_dot_product_attention`` (flash / memory-efficient kernels where available), no dropout."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(
                f"channels: expected a multiple of heads={n_heads}, got {d_model}. Change channels or heads."
            )
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.ff1 = nn.Linear(d_model, d_ff)
        self.ff2 = nn.Linear(d_ff, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, S, C = x.shape  # N sequences of length S, C channels
        q, k, v = (
            self.qkv(x).view(N, S, 3, self.n_heads, C // self.n_heads).permute(2, 0, 3, 1, 4)
        )  # 3 x (N, h, S, C/h)
        a = F.scaled_dot_product_attention(q, k, v)  # (N, h, S, C/h)
        x = self.norm1(x + self.out(a.transpose(1, 2).reshape(N, S, C)))
        return self.norm2(x + self.ff2(F.gelu(self.ff1(x))))
