"""diffad: anomaly detection with diffusion and masked-modelling models.

Public names: the detectors, :func:`load` / :func:`save` for fitted models, and the exceptions.
"""

from ._version import __version__
from .detectors import (  # noqa: E402
    DDPMTabular,
    DTECategorical,
    DTEInverseGamma,
    DTENonParametric,
    ImDiffusionDetector,
    IsolationForestDetector,
    KNNDetector,
    LOFDetector,
    OCSVMDetector,
    PCADetector,
    RandomDetector,
    SelfDistilledMAEDetector,
)
from .exceptions import ConfigError, DataValidationError, NotFittedError, PersistenceError  # noqa: E402
from .persistence import load, save  # noqa: E402

__all__ = [
    "__version__",
    "ConfigError",
    "DDPMTabular",
    "DTECategorical",
    "DTEInverseGamma",
    "DTENonParametric",
    "DataValidationError",
    "ImDiffusionDetector",
    "IsolationForestDetector",
    "KNNDetector",
    "LOFDetector",
    "OCSVMDetector",
    "NotFittedError",
    "PCADetector",
    "PersistenceError",
    "RandomDetector",
    "SelfDistilledMAEDetector",
    "load",
    "save",
]
