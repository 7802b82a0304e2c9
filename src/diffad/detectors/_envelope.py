"""The model folder's envelope and files, written without pickle (read back by :func:`diffad.load`).

A saved model is a folder:

- ``detector.json``: the envelope -- format name and version, diffad version, detector class name
  (looked up in a registry on load, never imported from the file), constructor parameters, and JSON-able
  fitted attributes;
- ``arrays.npz``: fitted numpy arrays (read with ``allow_pickle=False``);
- ``weights.pt``: torch ``state_dict`` tensors, when the detector has a network (read with
  ``torch.load(weights_only=True)``).

Writes go through :func:`diffad.fsio.output_folder`: atomic, and never over what diffad did not write.
This module sits beside the detectors (``BaseDetector.save`` uses it); ``diffad.persistence`` above them
loads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..fsio import MODEL_FORMAT, output_folder

__all__ = ["FORMAT", "FORMAT_VERSION", "save_model", "write_model"]

FORMAT = MODEL_FORMAT
FORMAT_VERSION = 1


def json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def save_model(detector: Any, path: str | Path, *, option: str = "path") -> Path:
    """Save a fitted detector to folder ``path`` (see ``BaseDetector.save``) and return the path."""
    with output_folder(path, "model", option=option) as stage:
        write_model(detector, stage)
    return Path(path)


def write_model(detector: Any, folder: Path) -> None:
    """Write the model files of a fitted detector into the new, empty ``folder`` (use :func:`save`
    unless the folder is part of a larger unit, such as a run folder being staged)."""
    attrs, arrays, weights = detector._get_state()
    envelope = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "diffad_version": __version__,
        "class": type(detector).__name__,
        "params": detector.get_params(deep=False),
        "attributes": attrs,
        "has_weights": weights is not None,
    }
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "arrays.npz", **arrays)
    if weights is not None:
        import torch

        torch.save({k: v.detach().cpu() for k, v in weights.items()}, folder / "weights.pt")
    (folder / "detector.json").write_text(
        json.dumps(envelope, indent=2, default=json_default)
    )  # the envelope last
