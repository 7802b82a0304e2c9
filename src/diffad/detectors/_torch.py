"""Shared persistence of the detectors whose fitted state includes a torch network."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..exceptions import PersistenceError
from ..runtime import keep_freed_memory
from ..training import resolve_device, seeded
from .base import BaseDetector

__all__ = ["TorchDetector"]


class TorchDetector(BaseDetector):
    """A detector with a network ``self._net`` made by ``self._build(n_features, device)``.

    Saving stores the weights (on the CPU) beside the other fitted attributes; loading rebuilds the
    network on ``self.device``, resolved as ``fit`` resolves it (None: CUDA when available), and loads them.

    Fitting or loading one calls :func:`diffad.runtime.keep_freed_memory` (once per process; faster on
    the CPU, same numbers, the peak memory is kept until the process ends; ``DIFFAD_MALLOC=system``
    turns it off).
    """

    def _build(self, n_features: int, device: torch.device) -> None:
        raise NotImplementedError

    def _fit_context(self):
        """The whole fit runs with torch's global stream (initial weights, dropout) seeded from
        ``random_state`` and the caller's stream restored afterwards: ``fit`` never moves it."""
        keep_freed_memory()
        return seeded(self.random_state, resolve_device(self.device))

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]:
        attrs, arrays, _ = super()._get_state()
        attrs["device_"] = "cpu"
        return attrs, arrays, {k: v.cpu() for k, v in self._net.state_dict().items()}

    def _set_state(
        self, attrs: dict[str, Any], arrays: dict[str, np.ndarray], weights: dict[str, Any] | None
    ) -> None:
        super()._set_state(attrs, arrays, weights)
        keep_freed_memory()
        dev = resolve_device(self.device)  # as in fit: None = CUDA when available
        self.device_ = str(dev)
        with seeded(
            0, dev
        ):  # initial weights, replaced by the saved ones: the caller's stream is not touched
            self._build(int(self.n_features_in_), dev)
        try:
            self._net.load_state_dict(weights)
        except (RuntimeError, KeyError, TypeError, AttributeError) as exc:
            raise PersistenceError(
                f"load: the saved weights do not fit {type(self).__name__}({self.n_features_in_} features): {exc}"
            ) from None
        self._net.eval()
