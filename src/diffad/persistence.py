"""Save and load fitted detectors without pickle.

The folder's layout is :mod:`diffad.detectors._envelope`'s. Writes are atomic and never destroy what diffad did not write (:mod:`diffad.fsio`): the folder is
written under a temporary name beside the target and swapped into place; a target that holds anything
but an earlier diffad model (a file, a folder of other files) is refused with an error.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .detectors._envelope import FORMAT, FORMAT_VERSION, write_model
from .detectors.base import BaseDetector, registry
from .exceptions import DataValidationError, PersistenceError
from .fsio import atomic_write_bytes, atomic_write_text

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "save",
    "load",
    "write_model",
    "atomic_write_text",
    "atomic_write_bytes",
]


def save(detector: Any, path: str | Path, *, option: str = "path") -> Path:
    """Save a fitted detector to folder ``path`` and return it (the same as ``detector.save(path)``).

    An earlier diffad model at ``path`` is replaced in one step; anything else there (a file, a folder
    holding other files) is refused with :class:`PersistenceError` and left untouched. ``option`` names
    the argument in messages (``--model`` on the command line).
    """
    if not isinstance(detector, BaseDetector):
        raise PersistenceError(f"save: expected a diffad detector, got {type(detector).__name__}.")
    return detector.save(path, option=option)


def _json_params(cls: type, params: dict[str, Any]) -> dict[str, Any]:
    """Parameters read from JSON, with lists turned back into tuples where the constructor's default is
    a tuple (JSON has no tuples), so that a loaded detector's ``get_params()`` equals the saved one's."""
    import inspect

    defaults = {k: p.default for k, p in inspect.signature(cls).parameters.items()}
    return {
        k: tuple(v) if isinstance(v, list) and isinstance(defaults.get(k), tuple) else v
        for k, v in params.items()
    }


def load(path: str | Path) -> Any:
    """Load a detector saved with :func:`save`. Clear errors for missing, corrupt or foreign folders."""
    path = Path(path)
    meta_file = path / "detector.json"
    if not path.is_dir():
        raise PersistenceError(
            f"load: expected a folder written by diffad save(), got {str(path)!r}, which is not a folder."
        )
    if not meta_file.is_file() and (path / "checkpoint.json").is_file():
        raise PersistenceError(
            f"load: {path} holds only a training checkpoint: the fit that writes this model was interrupted. "
            "Finish it with the same command and --resume (in Python: fit(X, resume=True)), then load."
        )
    if not meta_file.is_file():
        raise PersistenceError(
            f"load: expected {meta_file} (a diffad model folder), not found. Is this the folder given to save()?"
        )
    try:
        meta = json.loads(meta_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PersistenceError(
            f"load: {meta_file} is corrupt or truncated (not valid JSON: {exc}). Save the model again."
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise PersistenceError(
            f"load: expected format {FORMAT!r} in {meta_file}, got {meta.get('format') if isinstance(meta, dict) else type(meta).__name__!r}. This folder was not written by diffad."
        )
    if meta.get("format_version") != FORMAT_VERSION:
        raise PersistenceError(
            f"load: expected format version {FORMAT_VERSION}, got {meta.get('format_version')!r} (written by diffad {meta.get('diffad_version')}). Use a matching diffad version."
        )
    known = registry()
    cls = known.get(meta["class"]) if isinstance(meta.get("class"), str) else None
    if cls is None:
        raise PersistenceError(
            f"load: unknown detector class {meta.get('class')!r}; known: {sorted(known)}. Import the module that defines it first."
        )
    for key in ("params", "attributes"):
        if not isinstance(meta.get(key), dict):
            raise PersistenceError(f"load: {meta_file} has no valid {key!r} entry; the file is corrupt.")
    try:
        with np.load(path / "arrays.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise PersistenceError(
            f"load: expected {path / 'arrays.npz'}, not found. The folder is incomplete; save the model again."
        ) from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise PersistenceError(
            f"load: {path / 'arrays.npz'} is corrupt or truncated ({exc}). Save the model again."
        ) from None
    weights = None
    if meta.get("has_weights"):
        import torch

        try:
            weights = torch.load(path / "weights.pt", map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise PersistenceError(
                f"load: expected {path / 'weights.pt'}, not found. The folder is incomplete."
            ) from None
        except Exception as exc:  # torch raises RuntimeError / UnpicklingError on damaged files
            raise PersistenceError(
                f"load: {path / 'weights.pt'} is corrupt or truncated ({type(exc).__name__}). Save the model again."
            ) from None
    try:
        detector = cls(**_json_params(cls, {**cls._params_before, **meta["params"]}))
        detector._check_params()
    except TypeError as exc:
        raise PersistenceError(
            f"load: the saved parameters do not fit {cls.__name__} ({exc}). The folder is corrupt or from another version."
        ) from None
    except DataValidationError as exc:
        raise PersistenceError(
            f"load: {meta_file} holds a parameter {cls.__name__} does not accept ({exc}). The file was edited or is corrupt; "
            "save the model again."
        ) from None
    try:
        detector._set_state(meta["attributes"], arrays, weights)
    except PersistenceError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, RuntimeError) as exc:
        raise PersistenceError(
            f"load: the fitted state in {path} does not fit {cls.__name__} ({type(exc).__name__}: {exc}). "
            "The folder is corrupt or from another version; save the model again."
        ) from None
    return detector
