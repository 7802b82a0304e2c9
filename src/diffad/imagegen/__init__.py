"""Few-shot anomaly image generation (AnomalyDiffusion, Hu et al., AAAI 2024), scaled to a prior
trained here. Needs the ``image`` extra: ``pip install "diffad[image]"`` (diffusers)."""

from __future__ import annotations

try:
    import diffusers  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError('diffad.imagegen needs diffusers: pip install "diffad[image]"') from exc

from .attention import ReweightAttnProcessor, ReweightState, attention_weights, install_reweighting
from .generator import AnomalyDiffusion
from .models import ImageGenConfig, Segmenter

__all__ = [
    "AnomalyDiffusion",
    "ImageGenConfig",
    "ReweightAttnProcessor",
    "ReweightState",
    "Segmenter",
    "attention_weights",
    "install_reweighting",
]
