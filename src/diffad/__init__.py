"""diffad: anomaly detection with diffusion and masked-modelling models.

Public names: the detectors, :func:`load` / :func:`save` for fitted models, and the exceptions.
"""

__version__ = "0.1.0"

from .detectors import (  # noqa: E402
    DTENonParametric,
    ImDiffusionDetector,
    IsolationForestDetector,
    KNNDetector,
    LOFDetector,
    PCADetector,
    RandomDetector,
)
from .exceptions import ConfigError, DataValidationError, NotFittedError, PersistenceError  # noqa: E402
from .persistence import load, save  # noqa: E402

__all__ = [
    "__version__",
    "ConfigError",
    "DTENonParametric",
    "DataValidationError",
    "ImDiffusionDetector",
    "IsolationForestDetector",
    "KNNDetector",
    "LOFDetector",
    "NotFittedError",
    "PCADetector",
    "PersistenceError",
    "RandomDetector",
    "load",
    "save",
]
