"""Readers for user files and for the benchmark datasets.

``read_series(path)`` reads one CSV / Parquet / NPZ / NPY file. ``load_dataset(name)`` reads one
benchmark entity (``"SMD/machine-1-2"``, ``"SMAP"``, ``"NAB/realKnownCause/nyc_taxi"`` ...);
``load_datasets(name)`` reads every entity of a collection (``"SMD"`` gives every machine found).
The data directory comes from the ``data_dir`` argument or the ``DIFFAD_DATA`` environment variable;
there is no built-in default path.

This module dispatches a name to its collection; the readers live by job: ``files`` (one user file),
``collections`` (the benchmark sets), ``images`` (image sets), ``records`` (what they return).
"""

from __future__ import annotations

from pathlib import Path

from ..validation import fail
from .collections import COLLECTIONS, Collection, resolve_data_dir
from .files import LABEL_NAMES, TIMESTAMP_NAMES, read_csv_table, read_series
from .images import load_images
from .records import Dataset, ImageSet, SeriesData

__all__ = [
    "SeriesData",
    "Dataset",
    "read_series",
    "read_csv_table",
    "resolve_data_dir",
    "load_dataset",
    "load_datasets",
    "list_entities",
    "load_images",
    "ImageSet",
    "COLLECTIONS",
    "LABEL_NAMES",
    "TIMESTAMP_NAMES",
]


def _split_name(name: str) -> tuple[Collection, str | None]:
    head, _, rest = name.partition("/")
    coll = COLLECTIONS.get(head)
    if coll is None:
        raise fail(
            "dataset name",
            f"<collection>[/<entity>] with a collection in {list(COLLECTIONS)}",
            repr(name),
            "Run `diffad data list` to see what is available.",
        )
    return coll, rest or None


def _root_for(coll: Collection, data_dir: str | Path | None) -> Path:
    """The data folder a collection reads (``Path()`` for the built-in ones, which read no files)."""
    return resolve_data_dir(data_dir) if coll.needs_files else Path()


def list_entities(name: str, data_dir: str | Path | None = None) -> list[str]:
    """Full names of the entities of a collection found under the data directory."""
    coll, entity = _split_name(name)
    root = _root_for(coll, data_dir)
    found = coll.entities(root)
    if entity is not None:
        return [f"{coll.name}/{entity}"]
    if coll.whole:
        return list(coll.whole)
    return [e if e == coll.name else f"{coll.name}/{e}" for e in found]


def load_dataset(name: str, data_dir: str | Path | None = None) -> Dataset:
    """Load one entity, e.g. ``"SMD/machine-1-2"``, ``"SMAP"`` (concatenated), ``"SMAP/A-1"``,
    ``"NAB/realKnownCause/nyc_taxi"``, ``"UCR/135"``, ``"ADBench/6_cardio"``, ``"PSM"``.

    A collection with several entities (``"SMD"``, ``"NAB"``...) is an error here: use
    :func:`load_datasets` for those.
    """
    coll, entity = _split_name(name)
    root = _root_for(coll, data_dir)
    if entity is None:
        if coll.whole or coll.name in ("PSM", "SWaT"):
            entity = coll.name
        else:
            found = coll.entities(root)
            raise fail(
                f"dataset name {name!r}",
                "one entity",
                f"a collection of {len(found)} entities",
                f"Use load_datasets({name!r}) for all of them, or one of {[f'{coll.name}/{e}' for e in found[:3]]}...",
            )
    return coll.load(root, entity)


def load_datasets(name: str, data_dir: str | Path | None = None) -> list[Dataset]:
    """Load every entity a name stands for: ``"SMD"`` -> every machine found; an entity -> [it]."""
    coll, entity = _split_name(name)
    root = _root_for(coll, data_dir)
    if entity is not None or coll.whole or coll.name in ("PSM", "SWaT"):
        return [load_dataset(name, root)]
    found = coll.entities(root)
    if not found:
        raise coll.missing(root, f"{coll.name} files")
    return [coll.load(root, e) for e in found]
