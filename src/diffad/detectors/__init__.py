"""Detectors under one contract (see :mod:`diffad.detectors.base`)."""

from .base import BaseDetector, register, registry
from .baselines import (
    IsolationForestDetector,
    KNNDetector,
    LOFDetector,
    OCSVMDetector,
    PCADetector,
    RandomDetector,
)
from .dte import DDPMTabular, DTECategorical, DTEInverseGamma, DTENonParametric
from .imdiffusion import ImDiffusionDetector
from .sdmae import SelfDistilledMAEDetector

__all__ = [
    "BaseDetector",
    "DDPMTabular",
    "DTECategorical",
    "DTEInverseGamma",
    "DTENonParametric",
    "ImDiffusionDetector",
    "IsolationForestDetector",
    "KNNDetector",
    "LOFDetector",
    "OCSVMDetector",
    "PCADetector",
    "RandomDetector",
    "SelfDistilledMAEDetector",
    "register",
    "registry",
]
