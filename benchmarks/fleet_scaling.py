"""Scaling of ``diffad fleet`` on this machine: the same fleet on 1 and 2 Dask workers.

    python benchmarks/fleet_scaling.py --series 40 --workers 1 2 --out benchmarks/results/fleet-scaling.json

Generates ``--series`` synthetic series (``make_series``, seeds 0..N-1), then runs ``fleet.run`` with
ImDiffusion's ``fast`` preset (``--set`` overrides; the defaults below shorten training so that the run
takes minutes) on a fresh ``LocalCluster`` of each worker count, one torch thread per worker. Records
per worker count: wall seconds, speed-up over one worker, peak resident memory of each worker process,
the sum of the tasks' own seconds and Dask's overhead per series
((wall x workers - sum of task seconds) / series). Rows already in ``--out`` are kept and not run again.
Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import torch

from diffad import ImDiffusionDetector, fleet
from diffad.config import parse_assignments
from diffad.data.synthetic import make_series
from diffad.fsio import atomic_write_text

DEFAULTS = ["max_epochs=2", "epoch_windows=256"]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=40)
    ap.add_argument("--n-train", type=int, default=1000)
    ap.add_argument("--n-test", type=int, default=1000)
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--set", action="append", default=None, metavar="KEY=VALUE")
    ap.add_argument("--out", default="results/fleet-scaling.json")
    args = ap.parse_args()
    from distributed import Client, LocalCluster

    overrides = parse_assignments(args.set if args.set is not None else DEFAULTS)
    series = {}
    for i in range(args.series):
        d = make_series(n_train=args.n_train, n_test=args.n_test, n_channels=args.channels, seed=i)
        series[f"s{i:03d}"] = (d.train, d.test, d.labels)
    out_path = Path(args.out)
    rows = json.loads(out_path.read_text()) if out_path.is_file() else []
    setting = {
        "series": args.series,
        "n_train": args.n_train,
        "n_test": args.n_test,
        "channels": args.channels,
        "overrides": overrides,
    }
    for n in args.workers:
        if any(r["workers"] == n and r["setting"] == setting for r in rows):
            continue
        with (
            tempfile.TemporaryDirectory() as tmp,
            LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            t0 = time.perf_counter()
            summary = fleet.run(
                series, Path(tmp) / "fleet", detector=ImDiffusionDetector.fast(**overrides), client=client
            )
            wall = time.perf_counter() - t0
            peaks = sorted(client.run(peak_rss_mb).values())
        task = float(summary["task_s"].sum())
        row = {
            "workers": n,
            "setting": setting,
            "wall_s": round(wall, 2),
            "ok": int((summary["status"] == "ok").sum()),
            "task_s_sum": round(task, 2),
            "fit_s_mean": round(float(summary["fit_s"].mean()), 3),
            "score_s_mean": round(float(summary["score_s"].mean()), 3),
            "overhead_s_per_series": round((wall * n - task) / args.series, 3),
            "worker_peak_rss_mb": [round(p, 1) for p in peaks],
            "ran_on": {
                "cpus": os.cpu_count(),
                "threads_per_worker": 1,
                "python": platform.python_version(),
                "torch": torch.__version__,
            },
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
        atomic_write_text(out_path, json.dumps(rows, indent=1))
    base = {r["workers"]: r["wall_s"] for r in rows if r["setting"] == setting}
    if 1 in base:
        for n, w in sorted(base.items()):
            print(f"workers={n}: wall {w:.1f} s, speed-up {base[1] / w:.2f}x")


if __name__ == "__main__":
    main()
