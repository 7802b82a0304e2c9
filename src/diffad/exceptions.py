"""Exceptions raised by diffad.

All of them subclass :class:`ValueError`, so code that already catches ``ValueError`` around a
scikit-learn style estimator keeps working.
"""

from __future__ import annotations

__all__ = ["DiffadError", "DataValidationError", "NotFittedError", "ConfigError", "PersistenceError"]


class DiffadError(ValueError):
    """Base class of every error diffad raises on purpose."""


class DataValidationError(DiffadError):
    """Input data is not what the function expects (shape, type, values, lengths, options)."""


class NotFittedError(DiffadError, AttributeError):
    """A detector was used before ``fit``."""


class ConfigError(DiffadError):
    """A configuration file or mapping has unknown keys, wrong types or invalid values."""


class PersistenceError(DiffadError):
    """A saved model folder is missing, corrupt, truncated or not written by diffad."""
