"""One fit loop for the torch detectors: Adam, gradient clipping, early stopping, checkpoints, resume.

The loop knows nothing of diffusion: a detector passes a ``train_loss(batch_indices)`` closure that
returns a scalar loss tensor and a ``val_loss()`` closure that returns a float.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .exceptions import DataValidationError, PersistenceError
from .fsio import CHECKPOINT_FORMAT, atomic_write_bytes, atomic_write_text, read_envelope
from .validation import param_hint

__all__ = ["FitSettings", "chunked_mean", "fit_loop", "resolve_device", "seeded"]


def resolve_device(device: str | None) -> torch.device:
    """``None`` -> CUDA when available, else CPU; otherwise the named device, which must exist here."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise DataValidationError(
            f"device: expected 'cpu', 'cuda', 'cuda:N' or 'mps' (or None for CUDA when available), got {device!r}. "
            "Use one of those."
        ) from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (dev.index is not None and dev.index >= count):
            have = f"{count} CUDA device(s)" if count else "no CUDA device (or a CPU-only torch)"
            raise DataValidationError(
                f"device: expected a device this machine has, got {device!r}, but it has {have}. "
                f"Use {param_hint('device', 'cpu')}, or leave the device unset to use CUDA only where it is available."
            )
    elif dev.type == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise DataValidationError(
            f"device: expected a device this machine has, got {device!r}, but MPS is not available. Use 'cpu'."
        )
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise DataValidationError(
            f"device: expected 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}. Use one of those."
        )
    return dev


@contextlib.contextmanager
def seeded(seed: int, device: torch.device | str | None = None) -> Iterator[None]:
    """torch's global random stream seeded with ``seed`` inside the block, and the caller's stream (CPU,
    and the CUDA device in use) restored afterwards. For what torch draws only from the global stream:
    initial weights and dropout. Everything else takes an explicit ``torch.Generator``."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    devices = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def chunked_mean(loss: Callable[[slice], torch.Tensor | float], n: int, size: int) -> float:
    """Mean of a per-row-averaged ``loss(rows)`` over ``n`` rows taken ``size`` at a time (a
    validation loss too large for one batch), each chunk weighted by its number of rows."""
    return (
        sum(float(loss(slice(i, min(i + size, n)))) * (min(i + size, n) - i) for i in range(0, n, size)) / n
    )


@dataclass(frozen=True)
class FitSettings:
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 32
    samples_per_epoch: int | None = None  # a fresh random draw of this many items each epoch; None: all
    max_epochs: int = 20
    patience: int = 5  # epochs without validation improvement before stopping
    grad_clip: float = 1.0
    checkpoint: Path | None = None  # file written after every epoch (atomically), with a marker beside it
    resume: bool = False  # continue from ``checkpoint`` if it exists
    fingerprint: str = ""  # of the data and parameters; a checkpoint of other ones is refused on resume
    time_budget: float | None = (
        None  # seconds of training: no epoch starts that the mean epoch says would end past it
    )
    verbose: bool = False
    desc: str = "fit"


def _marker(path: Path) -> Path:
    """``checkpoint.json`` beside ``checkpoint.pt``: says the file is diffad's (so it may be replaced)."""
    return path.with_suffix(".json")


def _check_checkpoint_path(path: Path) -> None:
    """Before any training: the checkpoint's folder can be made, and a file already at its path is one
    of diffad's checkpoints (never overwrite a file diffad did not write)."""
    folder = path.parent
    if folder.exists() and not folder.is_dir():
        raise DataValidationError(
            f"checkpoint_dir: expected a folder (or a path to create one), got {str(folder)!r}, which is a file. "
            "Choose another checkpoint folder."
        )
    if path.exists() and read_envelope(_marker(path), CHECKPOINT_FORMAT) is None:
        raise PersistenceError(
            f"checkpoint: expected {str(path)!r} to be absent or a diffad checkpoint, got a file diffad did not write "
            f"(no {_marker(path).name} beside it). diffad does not overwrite it: choose another checkpoint folder."
        )


def _save_checkpoint(path: Path, state: dict) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_text(
        _marker(path),
        json.dumps(
            {"format": CHECKPOINT_FORMAT, "epoch": state["epoch"], "fingerprint": state["fingerprint"]}
        ),
    )
    atomic_write_bytes(path, buf.getvalue())


def fit_loop(
    model: torch.nn.Module,
    train_loss: Callable[[np.ndarray], torch.Tensor],
    val_loss: Callable[[], float],
    n_train: int,
    settings: FitSettings,
    rng: np.random.Generator,
    generators: tuple[torch.Generator, ...] = (),
) -> tuple[dict[str, list[float]], int]:
    """Train ``model`` in place; the weights of the best validation epoch are restored at the end.

    ``rng`` orders the batches; ``generators`` are the torch generators the loss closures draw from.
    Their states go into the checkpoint, so a resumed fit continues exactly where it stopped.

    Returns ``(history, best_epoch)``; history has ``train_loss``, ``val_loss`` and ``epoch_seconds`` per
    epoch, and ``stopped_by``: ``"patience"`` (early stopping), ``"time_budget"`` or ``"max_epochs"``.
    """
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    history: dict[str, list[float]] = {"train_loss": [], "val_loss": [], "epoch_seconds": []}
    best_val, best_epoch, best_state, start_epoch = float("inf"), -1, None, 0
    ckpt = settings.checkpoint
    if ckpt is not None:
        _check_checkpoint_path(Path(ckpt))
    if settings.resume and ckpt is not None and Path(ckpt).is_file():
        try:
            state = torch.load(ckpt, map_location=next(model.parameters()).device, weights_only=True)
        except Exception as exc:
            raise PersistenceError(
                f"resume: {ckpt} is not a readable checkpoint ({type(exc).__name__}: {exc}). Fit without resume to start over."
            ) from None
        if state.get("fingerprint", "") != settings.fingerprint:
            raise PersistenceError(
                f"resume: the checkpoint {ckpt} was written for other training data or other parameters "
                "(their fingerprints differ), so it cannot continue this fit. Fit the same data with the same "
                "parameters to resume, or fit without resume to start over (the checkpoint is then replaced)."
            )
        try:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
        except Exception as exc:
            raise PersistenceError(
                f"resume: {ckpt} is not a readable checkpoint of this model ({type(exc).__name__}: {exc}). Fit without resume to start over."
            ) from None
        history = {k: list(v) for k, v in state["history"].items()}
        best_val, best_epoch, start_epoch = state["best_val"], state["best_epoch"], state["epoch"] + 1
        best_state = state["best_model"]
        rng.bit_generator.state = state["rng"]
        for g, gs in zip(generators, state["generators"], strict=True):
            g.set_state(gs)
    bar = tqdm(
        range(start_epoch, settings.max_epochs),
        desc=settings.desc,
        disable=not settings.verbose,
        initial=start_epoch,
        total=settings.max_epochs,
    )
    stopped = "max_epochs"
    for epoch in bar:
        if best_epoch >= 0 and epoch - best_epoch > settings.patience:
            stopped = "patience"
            break
        spent = sum(history["epoch_seconds"])
        if (
            settings.time_budget is not None
            and history["epoch_seconds"]
            and spent + np.mean(history["epoch_seconds"]) > settings.time_budget
        ):
            stopped = "time_budget"  # (at least one epoch always runs)
            break
        t0 = time.perf_counter()
        model.train()
        order = rng.permutation(n_train)[: settings.samples_per_epoch]  # (a draw without replacement)
        total, count = 0.0, 0
        for i in range(0, len(order), settings.batch_size):
            idx = order[i : i + settings.batch_size]
            loss = train_loss(idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if settings.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            opt.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        model.eval()
        with torch.no_grad():
            val = float(val_loss())
        history["train_loss"].append(total / max(count, 1))
        history["val_loss"].append(val)
        history["epoch_seconds"].append(time.perf_counter() - t0)
        if val < best_val:
            best_val, best_epoch = val, epoch
            best_state = copy.deepcopy(model.state_dict())
        post = {"train": f"{history['train_loss'][-1]:.4f}", "val": f"{val:.4f}", "best": best_epoch}
        if settings.time_budget is not None:  # the bar's ETA counts epochs; the budget may end sooner
            post["budget left"] = f"{max(0.0, settings.time_budget - sum(history['epoch_seconds'])):.0f}s"
        bar.set_postfix(post)
        if ckpt is not None:
            _save_checkpoint(
                Path(ckpt),
                {
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "history": history,
                    "epoch": epoch,
                    "best_val": best_val,
                    "best_epoch": best_epoch,
                    "best_model": best_state,
                    "rng": rng.bit_generator.state,
                    "generators": [g.get_state() for g in generators],
                    "fingerprint": settings.fingerprint,
                },
            )
    history["stopped_by"] = stopped  # type: ignore[assignment]
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history, best_epoch
