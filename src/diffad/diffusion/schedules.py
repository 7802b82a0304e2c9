"""Noise schedules (closed forms; the networks never see betas)."""

from __future__ import annotations

import numpy as np

from ..validation import check_option, fail

__all__ = ["make_betas", "SCHEDULES"]

SCHEDULES = ("quad", "linear")


def make_betas(
    n_steps: int, beta_start: float = 1e-4, beta_end: float = 0.5, kind: str = "quad"
) -> np.ndarray:
    """Betas of a DDPM forward process, float64 of shape (T,).

    ``"quad"``: ``linspace(sqrt(beta_start), sqrt(beta_end), T) ** 2`` (the schedule of CSDI and
    ImDiffusion); ``"linear"``: ``linspace(beta_start, beta_end, T)`` (Ho et al., 2020).
    """
    check_option(kind, SCHEDULES, name="schedule")
    if n_steps < 1 or not 0 < beta_start <= beta_end < 1:
        raise fail(
            "schedule",
            "n_steps >= 1 and 0 < beta_start <= beta_end < 1",
            f"{(n_steps, beta_start, beta_end)}",
            "Fix the diffusion settings.",
        )
    if kind == "quad":
        return np.linspace(beta_start**0.5, beta_end**0.5, n_steps) ** 2
    return np.linspace(beta_start, beta_end, n_steps)
