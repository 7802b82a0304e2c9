"""Process-wide settings that make the torch detectors faster on the CPU without changing a result.

glibc's ``malloc`` serves every block above a threshold (at most 32 MiB) with a fresh ``mmap`` and
hands it back to the kernel on ``free``. The detectors' activations are often larger than that (the
ImDiffusion ``fast`` preset scores 512 windows at a time: about 90 MB per activation on MSL's 55
channels), so every forward pass maps new memory and the kernel zeroes it again page by page: on a
2-core machine, over 380,000 page faults a second and half of the CPU time spent in the kernel.
:func:`keep_freed_memory` tells glibc to serve all blocks from its heap and to keep what is freed for
reuse. The numbers computed are the same (the memory only comes from elsewhere); the process keeps its
peak memory until it ends, and that peak is higher (measured on MSL: scoring twice as fast, fitting
1.15 times, peak memory 4.0-4.9 GB instead of 3.0; ``docs/benchmarks.md``, "CPU memory allocation:
keeping freed memory for reuse").

The command line calls it at start-up (``diffad ...`` and every ``diffad bench --jobs N`` worker), and
every torch detector calls it when it is fitted or loaded, so library users have it too. ``DIFFAD_MALLOC=system`` leaves the allocator as it is.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

__all__ = ["allocator_setting", "keep_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_TRIM_THRESHOLD = (
    2**31 - 1
)  # mallopt takes a C int: give memory back only when 2 GiB lie free at the heap's top

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Serve large blocks from glibc's heap and keep freed memory for reuse (see the module doc).

    Returns True when the setting is in effect, False where it does not apply (not Linux with glibc,
    or ``DIFFAD_MALLOC=system``). Calling it again does nothing more.
    """
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get("DIFFAD_MALLOC", "").strip().lower() == "system":
        return False
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    _applied = bool(
        libc.mallopt(_M_MMAP_MAX, 0)
    )  # what matters; the trim threshold only keeps the heap's top
    if _applied:
        libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
    return _applied


def allocator_setting() -> str:
    """What a cell's ``ran_on`` records: ``"heap"`` when :func:`keep_freed_memory` is in effect, else ``"system"``."""
    return "heap" if _applied else "system"
