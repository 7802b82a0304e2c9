"""Shared building blocks: sinusoidal embeddings, attention, and a transformer encoder layer."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["sinusoidal", "attention", "chunked_sdpa", "EncoderLayer", "CUDA_MAX_BATCH"]

CUDA_MAX_BATCH = 65_535  # the CUDA attention kernels' limit on the batch of sequences (a grid dimension)


def sinusoidal(pos: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of positions ``pos`` (any shape) -> (*pos.shape, dim)."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, device=pos.device, dtype=torch.float32) / half
    )  # (dim/2,)
    ang = pos.float()[..., None] * freqs  # (..., dim/2)
    return torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Softmax attention of (N, h, S, d) queries, keys and values -> (N, h, S, d).

    On the CPU, two batched matrix products: for the short sequences and narrow heads of the
    time-series networks (S <= a few hundred, d <= 32) they run forward and backward in about 60 %
    of the time of ``scaled_dot_product_attention``'s CPU kernels (``docs/benchmarks.md``, "ImDiffusion
    speed"). Elsewhere ``scaled_dot_product_attention`` (flash / memory-efficient kernels), in chunks
    of at most :data:`CUDA_MAX_BATCH` sequences, which the CUDA kernels cannot exceed.
    """
    if q.device.type == "cpu":
        w = torch.softmax((q * (q.shape[-1] ** -0.5)) @ k.transpose(-1, -2), dim=-1)  # (N, h, S, S)
        return w @ v
    return chunked_sdpa(q, k, v, CUDA_MAX_BATCH)


def chunked_sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, max_batch: int) -> torch.Tensor:
    """``scaled_dot_product_attention`` over at most ``max_batch`` sequences at a time."""
    if q.shape[0] <= max_batch:
        return F.scaled_dot_product_attention(q, k, v)
    return torch.cat(
        [
            F.scaled_dot_product_attention(q[i : i + max_batch], k[i : i + max_batch], v[i : i + max_batch])
            for i in range(0, q.shape[0], max_batch)
        ]
    )


class EncoderLayer(nn.Module):
    """Post-norm transformer encoder layer (as ``nn.TransformerEncoderLayer``, GELU), attention through
    :func:`attention`, no dropout."""

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
        a = attention(q, k, v)  # (N, h, S, C/h)
        x = self.norm1(x + self.out(a.transpose(1, 2).reshape(N, S, C)))
        return self.norm2(x + self.ff2(F.gelu(self.ff1(x))))
