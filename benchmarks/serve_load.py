"""Load on ``diffad serve``: a bounded load generator against 127.0.0.1.

    python benchmarks/serve_load.py --series 1000 --channels 38 --concurrency 8 32 \
        --out benchmarks/results/serve-load.json
    python benchmarks/serve_load.py --series 1000 --channels 8 --rate 580 --compile

Fits one ImDiffusion model (``fast`` preset; ``--set`` overrides, by default 2 epochs: the scoring cost,
which is what is measured, does not depend on the number of epochs) on a synthetic series of
``--channels`` channels, copies it into ``--series`` series folders (a ``fleet fit`` layout), starts
``diffad serve`` in its own process and posts each series' points in requests of ``--points`` points
(one request per series per round). The identical model folders are loaded once and the service batches
the windows of all series in one network call; ``--no-share`` runs the same load with one model object
per series (no batching across series); ``--compile`` passes ``--compile`` to the service.

Two kinds of load, both bounded:

- ``--concurrency N ...`` (closed loop): at most N requests in flight, the next sent when one returns;
  it measures the most the service takes, and the latency is N / throughput.
- ``--rate P ...`` (open loop): requests sent on a fixed schedule offering P points per second (series
  in turn), whether or not earlier ones have returned (over at most 64 connections; a series' request
  waits for its previous one). The latency of a request is counted from its scheduled time, so a
  service that falls behind shows it in the latency, not in a slower schedule.

The first round of requests (no point is final yet: a window needs two requests) is sent closed loop
with 8 in flight and not counted. Recorded per load (rows already in ``--out`` are kept): throughput
in points per second over the later rounds, p50 / p99 request latency, the server's resident memory
before any series, after the first (its model loaded, and compiled with ``--compile``) and after all
(per series: the growth after the first, over the others; with ``--no-share`` that includes a model
per series), and the cold start of a series (its first
request: model load, state creation, first points, and compiling with ``--compile``) on an idle
server, for the first series and the median of the next five. The load generator runs on the same two
cores as the server.
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
OPEN_LOOP_CONNECTIONS = 64


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


async def drive(
    url: str,
    names: list[str],
    plan: list[list[bytes]],
    concurrency: int,
    rate: float | None,
    points: int,
    server_pid: int,
) -> dict:
    """Send the plan; rounds after the first closed loop (``concurrency`` in flight) or, with ``rate``
    (points per second), on a fixed schedule of one request every ``points / rate`` seconds."""
    import httpx

    sem = asyncio.Semaphore(concurrency)
    lat: list[list[float]] = [[] for _ in plan]
    finals = [0] * len(plan)
    first_seen: dict[str, float] = {}
    headers = {"content-type": "application/json"}
    conns = concurrency if rate is None else max(concurrency, OPEN_LOOP_CONNECTIONS)
    limits = httpx.Limits(max_connections=conns, max_keepalive_connections=conns)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:

        async def one(r: int, s: int, due: float | None = None) -> None:
            async with sem:
                t0 = time.perf_counter() if due is None else due
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
            if s == 0:
                first_mb = rss_mb(server_pid)  # the model is loaded (and compiled), one series' state
        cold = [first_seen[names[s]] for s in range(probe)]
        walls = []
        t0 = time.perf_counter()
        await asyncio.gather(*(one(0, s) for s in range(probe, len(names))))
        walls.append(time.perf_counter() - t0)
        if rate is None:
            for r in range(1, len(plan)):
                t0 = time.perf_counter()
                await asyncio.gather(*(one(r, s) for s in range(len(names))))
                walls.append(time.perf_counter() - t0)
        else:
            sem = asyncio.Semaphore(conns)  # the schedule, and the connections, bound what is in flight
            gap = points / rate
            start = time.perf_counter()
            last: dict[int, asyncio.Task] = {}
            tasks: list[asyncio.Task] = []

            async def scheduled(r: int, s: int, due: float, before: asyncio.Task | None) -> None:
                if before is not None:
                    await before  # a series' requests stay in order
                await one(r, s, due)

            k = 0
            for r in range(1, len(plan)):
                t_round = time.perf_counter()
                for s in range(len(names)):
                    due = start + k * gap
                    k += 1
                    await asyncio.sleep(max(0.0, due - time.perf_counter()))
                    task = asyncio.create_task(scheduled(r, s, due, last.get(s)))
                    last[s] = task
                    tasks.append(task)
                walls.append(time.perf_counter() - t_round)
            await asyncio.gather(*tasks)
            walls[-1] = time.perf_counter() - t_round  # the last round ends when its answers are in
    return {"lat": lat, "walls": walls, "finals": finals, "cold": cold, "first_mb": first_mb}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--channels", type=int, default=38)
    ap.add_argument("--points", type=int, default=25, help="points per request")
    ap.add_argument("--rounds", type=int, default=4, help="requests per series (the first is the cold start)")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[8, 32], help="closed-loop loads")
    ap.add_argument(
        "--rate",
        type=float,
        nargs="+",
        default=None,
        help="open-loop loads, points per second (replaces --concurrency)",
    )
    ap.add_argument("--no-share", action="store_true")
    ap.add_argument("--compile", action="store_true", help="serve with --compile")
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
        "compile": args.compile,
        "overrides": overrides,
        "window": det.window,
        "stride": det._score_stride(),
    }
    try:
        loads = [(None, r) for r in args.rate] if args.rate else [(c, None) for c in args.concurrency]
        for conc, rate in loads:
            label = args.label or (f"c{conc}" if rate is None else f"r{rate:g}") + (
                "-noshare" if args.no_share else ""
            ) + ("-compile" if args.compile else "")
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
            cmd += ["--state", str(state), "--log-level", "warning"]
            cmd += (["--no-share"] if args.no_share else []) + (["--compile"] if args.compile else [])
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
                res = asyncio.run(drive(url, names, plan, conc or 8, rate, args.points, proc.pid))
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
                "offered_points_per_s": rate,
                "points_per_s_sent": round(sent / wall, 1),
                "points_per_s_final": round(pts / wall, 1),
                "requests_per_s": round(len(steady) / wall, 1),
                "p50_ms": round(1000 * float(np.percentile(steady, 50)), 1),
                "p99_ms": round(1000 * float(np.percentile(steady, 99)), 1),
                "round_walls_s": [round(w, 2) for w in res["walls"]],
                "cold_first_ms": round(1000 * res["cold"][0], 1),
                "cold_median_ms": round(1000 * float(np.median(res["cold"][1:])), 1),
                "rss_base_mb": round(base_mb, 1),
                "rss_first_series_mb": round(res["first_mb"], 1),
                "rss_loaded_mb": round(loaded_mb, 1),
                "mb_per_series": round((loaded_mb - res["first_mb"]) / max(1, args.series - 1), 3),
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
