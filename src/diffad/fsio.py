"""Files and folders diffad writes: atomic files, and output folders that never destroy what is not ours.

Every output folder diffad writes (a saved model, a detection run) is one unit, marked by its envelope:

- a **model** folder holds ``detector.json`` (format ``diffad-detector``), ``arrays.npz``, optionally
  ``weights.pt``, and while training, ``checkpoint.pt`` with its marker ``checkpoint.json``
  (format ``diffad-checkpoint``);
- a **run** folder holds ``run.json`` (format ``diffad-run``), which lists every file of the run, and
  ``model/``; a run interrupted in training holds only ``model/`` with its checkpoint.

:func:`output_folder` is the only way diffad writes such a folder. It refuses a target that holds
anything else (a file, a folder with foreign entries), locks the target against other diffad processes,
lets the caller fill a staging folder beside the target, and swaps it into place in one step
(``renameat2(RENAME_EXCHANGE)`` on Linux), so a crash at any moment leaves the old folder or the new
one, never a mix. Nothing here knows about detectors: this module sits below every other.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import functools
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .exceptions import PersistenceError

__all__ = [
    "MODEL_FORMAT",
    "RUN_FORMAT",
    "CHECKPOINT_FORMAT",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_output",
    "output_folder",
    "read_envelope",
]

MODEL_FORMAT = "diffad-detector"
RUN_FORMAT = "diffad-run"
CHECKPOINT_FORMAT = "diffad-checkpoint"

MODEL_FILES = frozenset({"detector.json", "arrays.npz", "weights.pt", "checkpoint.pt", "checkpoint.json"})
KINDS = ("model", "run")


# ------------------------------------------------------------------------------------- atomic files
@functools.cache
def _umask() -> int:
    """The process's umask, read once (reading it means setting it)."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _file_mode() -> int:
    """The mode ``open()`` gives a new file (mkstemp's files are 0600)."""
    return 0o666 & ~_umask()


def _dir_mode() -> int:
    """The mode ``mkdir`` gives a new folder (mkdtemp's folders are 0700)."""
    return 0o777 & ~_umask()


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


# --------------------------------------------------------------------------------------- ownership
def read_envelope(path: Path, fmt: str) -> dict | None:
    """The JSON object in ``path`` if it is a diffad envelope of format ``fmt``, else None."""
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == fmt else None


def _is_temp(name: str) -> bool:
    """Leftovers of diffad's own atomic writes (``.name.XXXX.tmp``)."""
    return name.startswith(".") and name.endswith(".tmp")


def _foreign_entries(path: Path, kind: str) -> list[str] | None:
    """Entries of the existing folder ``path`` that a diffad ``kind`` folder would not hold; None when
    the folder carries no diffad envelope at all (and is not empty)."""
    names = sorted(p.name for p in path.iterdir() if not _is_temp(p.name))
    if not names:
        return []
    if kind == "model":
        marked = read_envelope(path / "detector.json", MODEL_FORMAT) or read_envelope(
            path / "checkpoint.json", CHECKPOINT_FORMAT
        )
        if marked is None:
            return None
        return [
            n for n in names if n not in MODEL_FILES or not (path / n).is_file() or (path / n).is_symlink()
        ]
    run = read_envelope(path / "run.json", RUN_FORMAT)
    listed = {"run.json", "model"}
    if run is None:
        if names != ["model"]:  # a run stopped during training holds only its model folder
            return None
    else:
        listed |= {str(f).split("/")[0] for f in run.get("files", []) if isinstance(f, str)}
    foreign = [n for n in names if n not in listed or (path / n).is_symlink()]
    model = path / "model"
    if "model" in names and "model" not in foreign:
        inner = _foreign_entries(model, "model") if model.is_dir() else None
        if inner is None:
            foreign.append("model")
        else:
            foreign += [f"model/{n}" for n in inner]
    return foreign


def _refusal(target: Path, kind: str, what: str, option: str) -> PersistenceError:
    return PersistenceError(
        f"{kind} folder {str(target)!r}: expected a new path, an empty folder or an earlier diffad {kind} "
        f"folder (which is replaced), got {what}. diffad never deletes what it did not write: "
        f"choose another {option}, or move those files away first."
    )


def check_output(target: str | Path, kind: str, option: str = "path") -> Path:
    """Raise :class:`PersistenceError` unless ``target`` can take a diffad ``kind`` folder: it does not
    exist, is an empty folder or an earlier diffad folder of that kind, and its parent can be written.
    ``option`` names the argument in messages (``--out`` on the command line)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    target = Path(target)
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        what = "a symbolic link" if target.is_symlink() else "an existing file"
        raise _refusal(target, kind, what, option)
    if target.is_dir():
        try:
            foreign = _foreign_entries(target, kind)
        except PermissionError:
            raise PersistenceError(
                f"{kind} folder {str(target)!r}: expected a folder diffad can read, got permission denied. Choose another {option}."
            ) from None
        if foreign is None:
            listing = sorted(p.name for p in target.iterdir())
            raise _refusal(
                target, kind, f"a folder that diffad did not write (it holds {_names(listing)})", option
            )
        if foreign:
            raise _refusal(
                target,
                kind,
                f"a diffad {kind} folder that also holds other files ({_names(foreign)})",
                option,
            )
    ancestor = target.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise PersistenceError(
            f"{option} {str(target)!r}: expected a path inside a folder, got {str(ancestor)!r}, which is a file. Choose another {option}."
        )
    if not _writable(ancestor):
        raise PersistenceError(
            f"{option} {str(target)!r}: expected a folder diffad can write in, got {str(ancestor)!r}, which is not writable. Choose another {option}."
        )
    return target


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)


def _names(names: list[str], most: int = 6) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


# ------------------------------------------------------------------------------------------- locks
_HELD: dict[Path, int] = {}  # target -> depth, for re-entrant claims within one process


@contextlib.contextmanager
def _lock(target: Path, option: str) -> Iterator[None]:
    """Exclusive lock on ``target`` among diffad processes: a hidden ``.NAME.lock`` beside it, held with
    ``flock`` and removed on release. Re-entrant within a process."""
    key = target.absolute()
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, the atomic swap still keeps each result whole
        yield
        return
    lock = target.parent / f".{target.name}.lock"
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise PersistenceError(
                f"{option} {str(target)!r}: another diffad process is writing this folder now. "
                f"Wait for it to finish, or choose another {option}."
            ) from None
        try:  # the holder before us may have removed the file after we opened it: lock the live one
            if os.fstat(fd).st_ino == os.stat(lock).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    _HELD[key] = 1
    try:
        yield
    finally:
        del _HELD[key]
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)
        os.close(fd)


# ------------------------------------------------------------------------------------------- swaps
@functools.cache
def _renameat2():
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    return getattr(libc, "renameat2", None)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths (Linux ``renameat2(RENAME_EXCHANGE)``); False where the
    system has no such call."""
    fn = _renameat2()
    if fn is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _publish(stage: Path, target: Path) -> None:
    """Put the finished folder ``stage`` at ``target``; an earlier ``target`` is removed afterwards."""
    if not target.exists():
        os.replace(stage, target)
        return
    if _exchange(stage, target):  # stage now holds the old folder
        shutil.rmtree(stage, ignore_errors=True)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
    os.replace(target, old / "x")
    os.replace(stage, target)
    shutil.rmtree(old, ignore_errors=True)


def _sweep_stale_stages(target: Path) -> None:
    """Remove staging folders that a killed diffad process left beside ``target`` (its pid is gone)."""
    prefix = f".{target.name}.partial."
    for p in target.parent.glob(f"{glob_escape(prefix)}*"):
        pid = p.name[len(prefix) :].split(".")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)


def glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def output_folder(target: str | Path, kind: str, *, option: str = "path") -> Iterator[Path]:
    """Write a diffad ``kind`` folder at ``target`` as one unit.

    Checks the target (:func:`check_output`), locks it against other diffad processes, yields an empty
    staging folder beside it for the caller to fill, and on success swaps it into place. On any error
    (or Ctrl-C) the staging folder is removed and the target is left as it was.
    """
    target = Path(target)
    with claim(target, kind, option=option):
        _sweep_stale_stages(target)
        stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial.{os.getpid()}.", dir=target.parent))
        try:
            os.chmod(stage, _dir_mode())  # mkdtemp's folders are 0700; give the mode mkdir would
            yield stage
            check_output(target, kind, option)  # again, under the lock: nothing foreign arrived meanwhile
            _publish(stage, target)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise


@contextlib.contextmanager
def claim(target: str | Path, kind: str, *, option: str = "path") -> Iterator[Path]:
    """Hold the lock on ``target`` (after checking it) for work that writes into it before the final
    :func:`output_folder` (a training checkpoint); :func:`output_folder` inside re-enters the lock."""
    target = check_output(target, kind, option)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PersistenceError(
            f"{option} {str(target)!r}: cannot create its parent folder ({exc.strerror}). Choose another {option}."
        ) from None
    with _lock(target, option):
        yield target
