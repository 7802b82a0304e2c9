"""Image tensors shared by the generator and its evaluation: conversions and the dihedral augmentations."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["to_unit", "to_uint8", "dihedral"]


def to_unit(images: np.ndarray) -> torch.Tensor:
    """uint8 (n, 3, H, W) -> float tensor in [-1, 1]."""
    return torch.as_tensor(np.asarray(images), dtype=torch.float32) / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float tensor in [-1, 1] -> uint8 array."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()


def dihedral(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Apply the dihedral transform ``k[i]`` (0..7: rotation by ``k % 4`` quarter turns, then a
    horizontal flip when ``k >= 4``) to each square image ``x[i]`` (B, C, H, W)."""
    out = x.clone()
    for code in range(8):
        sel = k == code
        if sel.any():
            y = torch.rot90(x[sel], code % 4, dims=(-2, -1))
            out[sel] = y.flip(-1) if code >= 4 else y
    return out
