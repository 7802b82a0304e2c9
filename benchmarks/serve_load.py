"""Load on ``diffad serve``: a bounded load generator against 127.0.0.1.

    python benchmarks/serve_load.py --series 1000 --channels 38 --concurrency 8 32 \
        --out benchmarks/results/serve-load.json

Fits one ImDiffusion model (``fast`` preset; ``--set`` overrides, by default 2 epochs: the scoring cost,
which is what is measured, does not depend on the number of epochs) on a synthetic series of
``--channels`` channels, copies it into ``--series`` series folders (a ``fleet fit`` layout), starts
``diffad serve`` in its own process and posts each series' points in requests of ``--points`` points
(one request per series per round) with at most ``--concurrency`` requests in flight. The identical
model folders are loaded once and the service batches the windows of all series in one network call;
``--no-share`` runs the same load with one model object per series (no batching across series).

Recorded per concurrency (rows already in ``--out`` are kept): throughput in points per second over
the rounds after the first, p50 / p99 request latency, the server's resident memory before any series
and after all are loaded (per series), and the cold start of a series (its first request: model load,
state creation, first points) on an idle server, for the first series and the median of the next five. The load generator
runs on the same two cores as the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from diffad import ImDiffusionDetector
from diffad.config import parse_assignments
from diffad.data.synthetic import make_series
from diffad.fsio import atomic_write_text

DEFAULTS = ["max_epochs=2", "epoch_windows=256"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def bodies(test: np.ndarray, series: int, points: int, rounds: int) -> list[list[bytes]]:
    """Request bodies: [round][series]; each series reads the test series from its own offset."""
    n = len(test)
    out = []
    for r in range(rounds):
        row = []
        for s in range(series):
            start = (s * 97 + r * points) % (n - points)
            pts = [
                {
                    "timestamp": 1_700_000_000 + 60 * (r * points + i),
                    "values": test[start + i].round(5).tolist(),
                }
                for i in range(points)
            ]
            row.append(json.dumps({"points": pts}).encode())
        out.append(row)
    return out


async def drive(url: str, names: list[str], plan: list[list[bytes]], concurrency: int) -> dict:
    import httpx

    sem = asyncio.Semaphore(concurrency)
    lat: list[list[float]] = [[] for _ in plan]
    finals = [0] * len(plan)
    first_seen: dict[str, float] = {}
    headers = {"content-type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:

        async def one(r: int, s: int) -> None:
            async with sem:
                t0 = time.perf_counter()
                resp = await client.post(f"/v1/series/{names[s]}/points", content=plan[r][s], headers=headers)
                dt = time.perf_counter() - t0
            if resp.status_code != 200:
                raise RuntimeError(f"{resp.status_code}: {resp.text}")
            lat[r].append(dt)
            finals[r] += len(resp.json()["final"])
            first_seen.setdefault(names[s], dt)

        # cold starts on an idle server: the first series (model load), then a few more, one at a time
        probe = min(6, len(names))
        for s in range(probe):
            await one(0, s)
        cold = [first_seen[names[s]] for s in range(probe)]
        walls = []
        for r in range(len(plan)):
            t0 = time.perf_counter()
            await asyncio.gather(*(one(r, s) for s in range(probe if r == 0 else 0, len(names))))
            walls.append(time.perf_counter() - t0)
    return {"lat": lat, "walls": walls, "finals": finals, "cold": cold}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--channels", type=int, default=38)
    ap.add_argument("--points", type=int, default=25, help="points per request")
    ap.add_argument("--rounds", type=int, default=4, help="requests per series (the first is the cold start)")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--no-share", action="store_true")
    ap.add_argument("--set", action="append", default=None, metavar="KEY=VALUE")
    ap.add_argument("--label", default=None)
    ap.add_argument("--out", default="benchmarks/results/serve-load.json")
    args = ap.parse_args()

    out_path = Path(args.out)
    rows = json.loads(out_path.read_text()) if out_path.is_file() else []
    data = make_series(n_train=3000, n_test=3000, n_channels=args.channels, n_anomalies=10, seed=0)
    overrides = parse_assignments(args.set if args.set is not None else DEFAULTS)
    work = Path(tempfile.mkdtemp(prefix="diffad-serve-load-"))
    t0 = time.perf_counter()
    det = ImDiffusionDetector.fast(random_state=0, verbose=False, **overrides).fit(data.train)
    fit_s = time.perf_counter() - t0
    det.save(work / "template")
    names = [f"host-{i:04d}" for i in range(args.series)]
    for name in names:
        shutil.copytree(work / "template", work / "models" / name)
    plan = bodies(data.test, args.series, args.points, args.rounds)
    setting = {
        "series": args.series,
        "channels": args.channels,
        "points_per_request": args.points,
        "rounds": args.rounds,
        "shared_model": not args.no_share,
        "overrides": overrides,
        "window": det.window,
        "stride": det._score_stride(),
    }
    try:
        for conc in args.concurrency:
            label = args.label or f"c{conc}" + ("-noshare" if args.no_share else "")
            if any(r["label"] == label and r["setting"] == setting for r in rows):
                print(f"{label}: already in {out_path}")
                continue
            port = free_port()
            state = work / f"state-{label}.sqlite"
            cmd = [
                sys.executable,
                "-m",
                "diffad.cli",
                "serve",
                "--models",
                str(work / "models"),
                "--port",
                str(port),
            ]
            cmd += ["--state", str(state), "--log-level", "warning"] + (
                ["--no-share"] if args.no_share else []
            )
            proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
            try:
                import httpx

                url = f"http://127.0.0.1:{port}"
                for _ in range(600):
                    try:
                        if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                            break
                    except httpx.TransportError:
                        time.sleep(0.1)
                base_mb = rss_mb(proc.pid)
                res = asyncio.run(drive(url, names, plan, conc))
                loaded_mb = rss_mb(proc.pid)
            finally:
                proc.terminate()
                proc.wait(timeout=60)
            steady = [x for r in res["lat"][1:] for x in r]
            pts = sum(res["finals"][1:])
            sent = args.series * args.points * (args.rounds - 1)
            wall = sum(res["walls"][1:])
            row = {
                "label": label,
                "setting": setting,
                "concurrency": conc,
                "points_per_s_sent": round(sent / wall, 1),
                "points_per_s_final": round(pts / wall, 1),
                "requests_per_s": round(len(steady) / wall, 1),
                "p50_ms": round(1000 * float(np.percentile(steady, 50)), 1),
                "p99_ms": round(1000 * float(np.percentile(steady, 99)), 1),
                "round_walls_s": [round(w, 2) for w in res["walls"]],
                "cold_first_ms": round(1000 * res["cold"][0], 1),
                "cold_median_ms": round(1000 * float(np.median(res["cold"][1:])), 1),
                "rss_base_mb": round(base_mb, 1),
                "rss_loaded_mb": round(loaded_mb, 1),
                "mb_per_series": round((loaded_mb - base_mb) / args.series, 3),
                "state_db_mb": round(state.stat().st_size / 2**20, 1) if state.exists() else None,
                "fit_s": round(fit_s, 1),
                "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                "date": time.strftime("%Y-%m-%d"),
            }
            print(json.dumps(row, indent=2))
            rows = [r for r in rows if not (r["label"] == label and r["setting"] == setting)] + [row]
            out_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out_path, json.dumps(rows, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
