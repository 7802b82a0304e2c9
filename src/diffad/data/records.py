"""The records the data layer hands out: a series read from a file, a benchmark entity, a set of images.

Plain frozen dataclasses with no behaviour of their own, so that readers (``loaders``) and generators
(``synthetic``) can both build them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["SeriesData", "Dataset", "ImageSet"]


@dataclass(frozen=True)
class SeriesData:
    """One series read from a file: ``values`` (n, K), ``index`` (DatetimeIndex or None),
    ``channels`` (K names) and ``labels`` ((n,) int8 or None)."""

    values: np.ndarray
    index: pd.DatetimeIndex | None
    channels: tuple[str, ...]
    labels: np.ndarray | None


@dataclass(frozen=True)
class Dataset:
    """One benchmark entity.

    ``kind="series"``: ``train`` (n_train, K) unlabelled, ``test`` (n_test, K), ``test_labels`` (n_test,).
    ``kind="tabular"``: ``train`` and ``test`` are the same (n, d) matrix and ``test_labels`` its labels;
    splitting into train/test is the benchmark protocol's job.
    """

    name: str
    train: np.ndarray
    test: np.ndarray
    test_labels: np.ndarray
    channels: tuple[str, ...] = ()
    kind: str = "series"
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def entity(self) -> str:
        return self.name.split("/", 1)[1] if "/" in self.name else self.name

    @property
    def anomaly_ratio(self) -> float:
        return float(np.mean(self.test_labels)) if len(self.test_labels) else 0.0


@dataclass(frozen=True)
class ImageSet:
    """Images of one object: ``train`` (n, 3, H, W) uint8 defect-free; ``test`` (m, 3, H, W) uint8;
    ``test_masks`` (m, H, W) uint8 (0 = normal, else a defect class id); ``test_kinds`` the defect type of
    each test image (``"good"`` for normal ones)."""

    name: str
    train: np.ndarray
    test: np.ndarray
    test_masks: np.ndarray
    test_kinds: tuple[str, ...]
