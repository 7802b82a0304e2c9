"""ImTransformer: the denoiser of ImDiffusion (Chen et al., VLDB 2024).

Residual blocks in the style of CSDI/DiffWave: each block adds the diffusion-step embedding, runs a
temporal transformer (attention over the L time steps of each channel) and a spatial transformer
(attention over the K channels at each time step), adds side information (time-position embedding,
learned channel embedding, mask-policy embedding, the conditioning mask), and applies a gated
activation with residual and skip outputs. The network predicts epsilon; it knows nothing of betas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .layers import EncoderLayer, sinusoidal

__all__ = ["ImTransformerConfig", "ImTransformer"]


@dataclass(frozen=True)
class ImTransformerConfig:
    n_features: int  # K, channels of the series
    n_blocks: int = 4  # residual blocks
    channels: int = 64  # C, width of every block
    heads: int = 8  # attention heads (head dim = channels / heads)
    ff_dim: int = 64  # feed-forward width of the transformer layers
    diffusion_embedding_dim: int = 128  # sinusoidal step embedding width
    time_embedding_dim: int = 128  # sinusoidal position-in-window embedding width
    feature_embedding_dim: int = 16  # learned per-channel embedding width
    policy_embedding_dim: int = 16  # learned mask-policy embedding width
    n_policies: int = 2  # number of mask policies that can be embedded
    temporal: bool = True  # ablation switch: temporal transformer on/off
    spatial: bool = True  # ablation switch: spatial transformer on/off


class _DiffusionEmbedding(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.proj = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim), nn.SiLU())

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.proj(sinusoidal(t, self.dim))  # (B, D)


def _pointwise(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """A kernel-1 ``Conv1d`` applied to channels-last ``x`` (..., C_in) -> (..., C_out).

    The network runs channels-last (B, K, L, C) so that the attention over time is a view and 1x1
    convolutions are plain matrix products; the parameters keep the ``Conv1d`` shapes, so model folders
    written before stay loadable."""
    return F.linear(x, conv.weight[:, :, 0], conv.bias)


class _ResidualBlock(nn.Module):
    def __init__(self, cfg: ImTransformerConfig, side_dim: int):
        super().__init__()
        C = cfg.channels
        self.step_proj = nn.Linear(cfg.diffusion_embedding_dim, C)
        self.side_proj = nn.Conv1d(side_dim, 2 * C, 1)
        self.mid_proj = nn.Conv1d(C, 2 * C, 1)
        self.out_proj = nn.Conv1d(C, 2 * C, 1)
        self.temporal = EncoderLayer(C, cfg.heads, cfg.ff_dim) if cfg.temporal else None
        self.spatial = EncoderLayer(C, cfg.heads, cfg.ff_dim) if cfg.spatial else None

    def forward(
        self, x: torch.Tensor, side: torch.Tensor, step: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, K, L, C); side (B, K, L, 2C), this block's projected side information; step (B, D)."""
        B, K, L, C = x.shape
        y = x + self.step_proj(step)[:, None, None, :]  # (B, K, L, C)
        if self.temporal is not None and L > 1:
            y = self.temporal(y.reshape(B * K, L, C)).reshape(B, K, L, C)  # attention over time
        if self.spatial is not None and K > 1:
            seq = y.transpose(1, 2).reshape(B * L, K, C)  # attention over channels
            y = self.spatial(seq).reshape(B, L, K, C).transpose(1, 2)
        y = _pointwise(self.mid_proj, y) + side  # (B, K, L, 2C)
        gate, filt = y.chunk(2, dim=-1)
        y = torch.sigmoid(gate) * torch.tanh(filt)  # (B, K, L, C)
        residual, skip = _pointwise(self.out_proj, y).chunk(2, dim=-1)
        return (x + residual) / math.sqrt(2.0), skip


class ImTransformer(nn.Module):
    """epsilon-prediction network.

    ``forward(x, cond_mask, t, policy)``:
    x (B, 2, K, L) -- channel 0 the conditioning values (zero outside ``cond_mask``), channel 1 the
    current sample of the imputed region (zero inside ``cond_mask``); cond_mask (B, K, L);
    t (B,) diffusion steps; policy (B,) mask-policy indices. Returns epsilon (B, K, L).

    The side information does not change across the denoising steps of one sampling run, so samplers
    call :meth:`condition` once and pass its result to :meth:`denoise` at every step.
    """

    def __init__(self, cfg: ImTransformerConfig):
        super().__init__()
        self.cfg = cfg
        C = cfg.channels
        self.feature_embedding = nn.Embedding(cfg.n_features, cfg.feature_embedding_dim)
        self.policy_embedding = nn.Embedding(cfg.n_policies, cfg.policy_embedding_dim)
        self.step_embedding = _DiffusionEmbedding(cfg.diffusion_embedding_dim)
        side_dim = cfg.time_embedding_dim + cfg.feature_embedding_dim + cfg.policy_embedding_dim + 1
        self.input_proj = nn.Conv1d(2, C, 1)
        self.blocks: list[_ResidualBlock] = nn.ModuleList(  # type: ignore[assignment]  # typed for its items
            _ResidualBlock(cfg, side_dim) for _ in range(cfg.n_blocks)
        )
        self.skip_proj = nn.Conv1d(C, C, 1)
        self.output_proj = nn.Conv1d(C, 1, 1)
        nn.init.zeros_(self.output_proj.weight)
        nn.init.zeros_(self.output_proj.bias)  # type: ignore[arg-type]  # Conv1d has a bias by default

    def side_info(self, cond_mask: torch.Tensor, policy: torch.Tensor) -> torch.Tensor:
        B, K, L = cond_mask.shape
        dev = cond_mask.device
        time = sinusoidal(torch.arange(L, device=dev), self.cfg.time_embedding_dim)  # (L, Dt)
        feat = self.feature_embedding(torch.arange(K, device=dev))  # (K, Df)
        pol = self.policy_embedding(policy)  # (B, Dp)
        return torch.cat(
            [
                time[None, None].expand(B, K, L, -1),
                feat[None, :, None].expand(B, K, L, -1),
                pol[:, None, None].expand(B, K, L, -1),
                cond_mask[..., None],
            ],
            dim=-1,
        )  # (B, K, L, S)

    def condition(self, cond_mask: torch.Tensor, policy: torch.Tensor) -> list[torch.Tensor]:
        """Per-block projected side information, each (B, K, L, 2C)."""
        side = self.side_info(cond_mask, policy)  # (B, K, L, S)
        return [_pointwise(block.side_proj, side) for block in self.blocks]

    def denoise(self, x: torch.Tensor, t: torch.Tensor, sides: list[torch.Tensor]) -> torch.Tensor:
        h = F.relu(_pointwise(self.input_proj, x.permute(0, 2, 3, 1)))  # (B, K, L, C)
        step = self.step_embedding(t)  # (B, D)
        skips = torch.zeros_like(h)
        for block, side in zip(self.blocks, sides, strict=True):
            h, skip = block(h, side, step)
            skips = skips + skip
        out = F.relu(_pointwise(self.skip_proj, skips / math.sqrt(len(self.blocks))))  # (B, K, L, C)
        return _pointwise(self.output_proj, out)[..., 0]  # (B, K, L)

    def forward(
        self, x: torch.Tensor, cond_mask: torch.Tensor, t: torch.Tensor, policy: torch.Tensor
    ) -> torch.Tensor:
        return self.denoise(x, t, self.condition(cond_mask, policy))
