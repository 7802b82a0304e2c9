"""Diffusion machinery: schedules, the DDPM/DDIM scheduler and masking strategies."""

from .ddpm import PREDICTION_TYPES, SAMPLERS, DDPMScheduler
from .imputation import impute
from .masking import forecast_mask, full_mask, grating_mask, random_mask, strip_ids
from .schedules import SCHEDULES, make_betas

__all__ = [
    "DDPMScheduler",
    "PREDICTION_TYPES",
    "SAMPLERS",
    "SCHEDULES",
    "impute",
    "forecast_mask",
    "full_mask",
    "grating_mask",
    "make_betas",
    "random_mask",
    "strip_ids",
]
