"""Detectors under one contract (see :mod:`diffad.detectors.base`)."""

from .base import BaseDetector, register, registry
from .baselines import IsolationForestDetector, KNNDetector, LOFDetector, PCADetector, RandomDetector
from .dte import DTENonParametric
from .imdiffusion import ImDiffusionDetector

__all__ = [
    "BaseDetector",
    "DTENonParametric",
    "ImDiffusionDetector",
    "IsolationForestDetector",
    "KNNDetector",
    "LOFDetector",
    "PCADetector",
    "RandomDetector",
    "register",
    "registry",
]
