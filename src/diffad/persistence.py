"""Save and load fitted detectors without pickle.

A saved model is a folder:

- ``detector.json``: the envelope -- format name and version, diffad version, detector class name
  (looked up in a registry, never imported from the file), constructor parameters, and JSON-able
  fitted attributes;
- ``arrays.npz``: fitted numpy arrays (read with ``allow_pickle=False``);
- ``weights.pt``: torch ``state_dict`` tensors, when the detector has a network (read with
  ``torch.load(weights_only=True)``).

Writes are atomic: the folder is written under a temporary name beside the target and renamed into
place, so an interrupted save never leaves a half folder that looks whole.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .detectors.base import registry
from .exceptions import PersistenceError

__all__ = ["FORMAT", "FORMAT_VERSION", "save", "load", "atomic_write_text", "atomic_write_bytes"]

FORMAT = "diffad-detector"
FORMAT_VERSION = 1


@functools.cache
def _file_mode() -> int:
    """The mode ``open()`` gives a new file under the process's umask (mkstemp's files are 0600);
    read once, since reading the umask means setting it."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename; the file
    gets the permissions a plain ``open(path, "w")`` would give it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def save(detector: Any, path: str | Path) -> Path:
    """Save a fitted detector to folder ``path`` (replaced if it exists). Returns the path."""
    if registry().get(type(detector).__name__) is not type(detector):
        raise PersistenceError(f"save: expected a registered diffad detector, got {type(detector).__name__}. Decorate its class with diffad.detectors.base.register.")
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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        (tmp / "detector.json").write_text(json.dumps(envelope, indent=2, default=_json_default))
        np.savez(tmp / "arrays.npz", **arrays)
        if weights is not None:
            import torch

            torch.save({k: v.detach().cpu() for k, v in weights.items()}, tmp / "weights.pt")
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
            os.replace(path, old / "x")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def load(path: str | Path) -> Any:
    """Load a detector saved with :func:`save`. Clear errors for missing, corrupt or foreign folders."""
    path = Path(path)
    meta_file = path / "detector.json"
    if not path.is_dir():
        raise PersistenceError(f"load: expected a folder written by diffad save(), got {str(path)!r}, which is not a folder.")
    if not meta_file.is_file():
        raise PersistenceError(f"load: expected {meta_file} (a diffad model folder), not found. Is this the folder given to save()?")
    try:
        meta = json.loads(meta_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PersistenceError(f"load: {meta_file} is corrupt or truncated (not valid JSON: {exc}). Save the model again.") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise PersistenceError(f"load: expected format {FORMAT!r} in {meta_file}, got {meta.get('format') if isinstance(meta, dict) else type(meta).__name__!r}. This folder was not written by diffad.")
    if meta.get("format_version") != FORMAT_VERSION:
        raise PersistenceError(f"load: expected format version {FORMAT_VERSION}, got {meta.get('format_version')!r} (written by diffad {meta.get('diffad_version')}). Use a matching diffad version.")
    known = registry()
    cls = known.get(meta.get("class"))
    if cls is None:
        raise PersistenceError(f"load: unknown detector class {meta.get('class')!r}; known: {sorted(known)}. Import the module that defines it first.")
    for key in ("params", "attributes"):
        if not isinstance(meta.get(key), dict):
            raise PersistenceError(f"load: {meta_file} has no valid {key!r} entry; the file is corrupt.")
    try:
        with np.load(path / "arrays.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise PersistenceError(f"load: expected {path / 'arrays.npz'}, not found. The folder is incomplete; save the model again.") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise PersistenceError(f"load: {path / 'arrays.npz'} is corrupt or truncated ({exc}). Save the model again.") from None
    weights = None
    if meta.get("has_weights"):
        import torch

        try:
            weights = torch.load(path / "weights.pt", map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise PersistenceError(f"load: expected {path / 'weights.pt'}, not found. The folder is incomplete.") from None
        except Exception as exc:  # torch raises RuntimeError / UnpicklingError on damaged files
            raise PersistenceError(f"load: {path / 'weights.pt'} is corrupt or truncated ({type(exc).__name__}). Save the model again.") from None
    try:
        detector = cls(**meta["params"])
    except TypeError as exc:
        raise PersistenceError(f"load: the saved parameters do not fit {cls.__name__} ({exc}). The folder is corrupt or from another version.") from None
    detector._set_state(meta["attributes"], arrays, weights)
    return detector
