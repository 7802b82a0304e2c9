"""What ``--train`` / ``--test`` name: a series file (CSV, Parquet, NPZ, NPY) or a benchmark dataset
(``SMD/machine-1-2``, ``NAB/realKnownCause/nyc_taxi``), read from ``--data-dir`` or ``$DIFFAD_DATA``.

A path that exists is a file; a value that does not exist and starts with a registered collection
(``diffad data list``) is a dataset, whose train part trains and whose test part (with its labels) is
scored."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.files import read_frame, read_labels
from ..exceptions import ConfigError

__all__ = ["Part", "read_part", "is_dataset_name"]


@dataclass(frozen=True)
class Part:
    frame: pd.DataFrame
    labels: np.ndarray | None
    source: str  # what was read, for the report and run.json


def is_dataset_name(value: str | Path) -> bool:
    """A value that is not an existing path and starts with a registered collection."""
    from ..data.collections import COLLECTIONS

    text = str(value)
    return not Path(text).exists() and text.partition("/")[0] in COLLECTIONS


def read_part(
    value: Path,
    part: str,
    *,
    labels: Path | None = None,
    timestamp_col: str | None = None,
    label_col: str | None = None,
    data_dir: Path | None = None,
) -> Part:
    """The ``part`` ("train" or "test") that ``--train`` / ``--test`` names; ``labels`` (a file) replaces
    the labels of the file or of the dataset."""
    if not is_dataset_name(value):
        frame, y = read_frame(value, labels, timestamp_col=timestamp_col, label_col=label_col)
        return Part(frame, y, str(value))
    from ..data.collections import COLLECTIONS, resolve_data_dir
    from ..data.loaders import load_dataset

    name = str(value)
    ds = load_dataset(name, data_dir)
    if ds.kind != "series":
        raise ConfigError(
            f"--{part}: {name} is a tabular set (one matrix of rows with labels, no train part); its split "
            "into training and test rows is the benchmark protocol's. Run it with `diffad bench`, or write "
            "the rows to score into a file."
        )
    values = ds.train if part == "train" else ds.test
    channels = list(ds.channels) or [f"ch{k}" for k in range(values.shape[1])]
    frame = pd.DataFrame(values, columns=channels)
    y = None
    if part == "test":
        y = read_labels(labels, len(frame)) if labels is not None else np.asarray(ds.test_labels)
    where = (
        f"in {resolve_data_dir(data_dir)}" if COLLECTIONS[name.partition("/")[0]].needs_files else "built in"
    )
    return Part(frame, y, f"{name} ({part} part, {where})")
