"""Data layer: file and benchmark readers, windows, scalers, synthetic generators."""

from .loaders import (
    COLLECTIONS,
    Dataset,
    ImageSet,
    SeriesData,
    list_entities,
    load_dataset,
    load_datasets,
    load_images,
    read_series,
    resolve_data_dir,
)
from .scaling import make_scaler
from .series import reassemble, sliding_windows, time_split, window_starts

__all__ = [
    "COLLECTIONS",
    "Dataset",
    "ImageSet",
    "SeriesData",
    "list_entities",
    "load_dataset",
    "load_datasets",
    "load_images",
    "make_scaler",
    "read_series",
    "reassemble",
    "resolve_data_dir",
    "sliding_windows",
    "time_split",
    "window_starts",
]
