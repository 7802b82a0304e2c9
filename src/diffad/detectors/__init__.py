"""Detectors under one contract (see :mod:`diffad.detectors.base`)."""

from .base import BaseDetector, register, registry
from .baselines import IsolationForestDetector, KNNDetector, LOFDetector, PCADetector, RandomDetector

__all__ = [
    "BaseDetector",
    "IsolationForestDetector",
    "KNNDetector",
    "LOFDetector",
    "PCADetector",
    "RandomDetector",
    "register",
    "registry",
]
