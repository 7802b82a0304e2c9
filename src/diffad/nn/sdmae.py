"""Self-distilled masked autoencoder for multivariate windows: masking strategies and the network.

Every masking strategy is a pure function ``(B, L, K, ratio, generator, patch) -> bool (B, L, K)``
(True = hidden from the encoder) that hides exactly ``round(ratio * units)`` units per window, where
a unit is a patch of time steps, one entry, one time step, or one time step of one channel.

The network works on patch tokens: a token is the ``patch`` x K values of a patch with masked entries
set to 0, concatenated with the patch's 0/1 mask, so one architecture serves the four strategies
(entry-level masks cannot drop whole tokens as the MAE of images does). A transformer encoder reads
the tokens; a deeper teacher decoder and a shallower student decoder each reconstruct every entry.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .layers import EncoderLayer, sinusoidal

__all__ = ["MASKINGS", "patch_mask", "token_mask", "temporal_mask", "feature_mask", "make_mask", "SDMAE"]


def _choose(B: int, n: int, k: int, generator: torch.Generator, device) -> torch.Tensor:
    """(B, n) bool with exactly k True per row, uniformly at random."""
    order = torch.rand(B, n, generator=generator, device=device).argsort(dim=1)
    return order < k


def _count(ratio: float, n: int) -> int:
    return int(round(ratio * n))


def patch_mask(
    B: int, L: int, K: int, ratio: float, generator: torch.Generator, patch: int = 10, device="cpu"
) -> torch.Tensor:
    """MAE style: whole patches of ``patch`` consecutive time steps, across all channels."""
    n = L // patch
    chosen = _choose(B, n, _count(ratio, n), generator, device)  # (B, n)
    return chosen.repeat_interleave(patch, dim=1)[:, :, None].expand(B, L, K).clone()


def token_mask(
    B: int, L: int, K: int, ratio: float, generator: torch.Generator, patch: int = 10, device="cpu"
) -> torch.Tensor:
    """BERT style: single entries (one time step of one channel) anywhere in the window."""
    return _choose(B, L * K, _count(ratio, L * K), generator, device).view(B, L, K)


def temporal_mask(
    B: int, L: int, K: int, ratio: float, generator: torch.Generator, patch: int = 10, device="cpu"
) -> torch.Tensor:
    """Whole time steps (all channels at once), scattered over the window."""
    return _choose(B, L, _count(ratio, L), generator, device)[:, :, None].expand(B, L, K).clone()


def feature_mask(
    B: int, L: int, K: int, ratio: float, generator: torch.Generator, patch: int = 10, device="cpu"
) -> torch.Tensor:
    """Each channel its own independent set of masked time steps."""
    chosen = _choose(B * K, L, _count(ratio, L), generator, device)  # (B*K, L)
    return chosen.view(B, K, L).transpose(1, 2).contiguous()


MASKINGS: dict[str, Callable[..., torch.Tensor]] = {
    "patch": patch_mask,
    "token": token_mask,
    "temporal": temporal_mask,
    "feature": feature_mask,
}


def make_mask(
    strategy: str, B: int, L: int, K: int, ratio: float, generator: torch.Generator, patch: int, device="cpu"
) -> torch.Tensor:
    return MASKINGS[strategy](B, L, K, ratio, generator, patch=patch, device=device)


class _Decoder(nn.Module):
    def __init__(self, d_model: int, heads: int, layers: int, out_dim: int):
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(d_model, heads, 2 * d_model) for _ in range(layers))
        self.head = nn.Linear(d_model, out_dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            h = layer(h)
        return self.head(h)


class SDMAE(nn.Module):
    """Encoder over patch tokens, teacher and student decoders (either may be left out: ``decoders``)."""

    def __init__(
        self,
        n_features: int,
        window: int,
        patch: int,
        d_model: int = 64,
        heads: int = 4,
        encoder_layers: int = 3,
        teacher_layers: int = 4,
        student_layers: int = 1,
        decoders: tuple[str, ...] = ("teacher", "student"),
    ):
        super().__init__()
        self.K, self.L, self.P = n_features, window, patch
        self.N = window // patch
        self.embed = nn.Linear(2 * patch * n_features, d_model)
        self.register_buffer("pos", sinusoidal(torch.arange(self.N), d_model), persistent=False)
        self.encoder = nn.ModuleList(EncoderLayer(d_model, heads, 2 * d_model) for _ in range(encoder_layers))
        depth = {"teacher": teacher_layers, "student": student_layers}
        self.decoders = nn.ModuleDict(
            {name: _Decoder(d_model, heads, depth[name], patch * n_features) for name in decoders}
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """x (B, L, K), mask (B, L, K) bool -> {decoder name: reconstruction (B, L, K)}."""
        B = x.shape[0]
        m = mask.to(x.dtype)
        tokens = torch.cat([x * (1.0 - m), m], dim=-1).reshape(B, self.N, 2 * self.P * self.K)
        h = self.embed(tokens) + self.pos
        for layer in self.encoder:
            h = layer(h)
        return {name: dec(h + self.pos).reshape(B, self.L, self.K) for name, dec in self.decoders.items()}
