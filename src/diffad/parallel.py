"""diffad's one way to run work in parallel: a ``dask.distributed`` client (extra ``fleet``).

``diffad fleet`` runs one task per series on it and ``diffad bench --jobs N`` one task per cell, so a
laptop's ``LocalCluster`` and a cluster of many machines (``--scheduler ADDRESS``) run the same code,
with Dask's scheduler, dashboard and worker resilience rather than a pool of diffad's own.

Each task starts with :func:`worker_setup`: torch's thread count for the task (torch's default, one
thread per core in every process, oversubscribes a machine shared by several workers and slows every
task many times over) and the allocator setting of the command line (:mod:`diffad.runtime`), which a
worker process started afresh does not inherit.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from .exceptions import ConfigError

__all__ = ["require_dask", "dask_client", "worker_setup"]


def require_dask(what: str = "diffad fleet") -> None:
    """Raise a :class:`ConfigError` that says how to install Dask when it is missing."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"{what} needs dask.distributed, which is not installed: pip install 'diffad[fleet]'"
        ) from None


@contextlib.contextmanager
def dask_client(
    client: Any = None,
    workers: int | None = None,
    scheduler: str | None = None,
    threads: int = 1,
    what: str = "diffad fleet",
) -> Iterator[Any]:
    """The client to run on: the caller's ``client``, one connected to ``scheduler``, or a new
    ``LocalCluster`` of ``workers`` processes (default: the cores / ``threads``) with one task each at a
    time, closed on exit."""
    require_dask(what)
    from distributed import Client, LocalCluster

    if client is not None:
        yield client
        return
    if scheduler is not None:
        with Client(scheduler) as c:
            yield c
        return
    n = workers or max(1, (os.cpu_count() or 1) // threads)
    with (
        LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as c,
    ):
        yield c


def worker_setup(threads: int) -> None:
    """The start of every task on a worker: ``threads`` torch threads and the allocator setting."""
    import torch

    from .runtime import keep_freed_memory

    torch.set_num_threads(max(1, int(threads)))
    keep_freed_memory()
