"""``diffad serve``: an HTTP service that scores live points of many series (FastAPI + uvicorn).

Every series has a fitted model in ``--models DIR``: a sub-folder that is a saved model
(``DIR/<series>/detector.json``, as ``diffad fleet fit`` writes) or a run folder with one
(``DIR/<series>/model/``, as ``diffad fleet detect`` and ``diffad detect`` write). Models are loaded on
a series' first request; identical model folders (same files) share one loaded model, and the points
of all series that share a model are scored in one batch.

Endpoints (JSON unless said):

- ``POST /v1/series/{id}/points``: the next points, as JSON ``{"points": [{"timestamp": ..., "values":
  [...]}, ...]}`` (or channel names as keys instead of ``values``; a bare list also works) or as CSV
  lines (``Content-Type: text/csv``: ``timestamp,v1,...,vK`` or ``v1,...,vK``, an optional header
  line starting with ``timestamp``). Returns the points whose scores became final (score, flag,
  position, timestamp), the events opened and closed, the threshold in force and the open event;
  ``?provisional=true`` adds scores of the newest points (not final).
- ``GET /v1/series/{id}/events?status=all|open|closed``: the series' events.
- ``GET /v1/series``: the series the service knows, with counts.
- ``GET /healthz``: liveness (never needs the token).
- ``GET /metrics``: Prometheus text: points ingested, scoring latency, batch sizes, open events, model age.

State (each series' buffered context, counters, threshold state and events) is kept in SQLite
(``--state``, default ``DIR/serve-state.sqlite``) and written after every batch, so a restart loses
nothing that was answered. Bad input gets a 4xx with a message: malformed JSON or CSV (400), an unknown
series (404), timestamps not after the series' last one (409), a wrong channel count, NaN or missing
values, unordered or duplicate timestamps inside a request, too many points (422).

The service listens on 127.0.0.1 by default; any other address needs a bearer token (``--token`` or
``$DIFFAD_TOKEN``), then required on every endpoint but ``/healthz``.
"""

import asyncio
import hashlib
import hmac
import json
import math
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .events import EventRules, event_record
from .exceptions import ConfigError, DiffadError
from .stream import StreamScorer, update_many

__all__ = ["create_app", "run", "ModelDirectory", "StateStore", "LOOPBACK"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")
MAX_POINTS = 100_000  # per request


class RequestError(Exception):
    """A bad request: HTTP ``status`` and a message for the client."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


# ------------------------------------------------------------------------------------------ models
class ModelDirectory:
    """The series of ``--models DIR`` and their models, loaded on first use; folders with the same files
    share one loaded detector (``share=False``: one per series). ``compile=True`` switches on the
    ``compile`` parameter of the detectors that have one (compiled network for scoring) and compiles
    it when the model is loaded, in the first request of its first series."""

    def __init__(self, root: str | Path, *, share: bool = True, compile: bool = False):
        self.root = Path(root)
        if not self.root.is_dir():
            raise ConfigError(
                f"--models: expected a folder of models (a `fleet fit` or `fleet detect` output), got {str(root)!r}."
            )
        self.share, self.compile = share, compile
        self.paths = self._discover()
        if not self.paths:
            raise ConfigError(
                f"--models: no model found in {self.root}: expected sub-folders <series>/detector.json or "
                "<series>/model/detector.json (what `diffad fleet fit` or `fleet detect` write)."
            )
        self._loaded: dict[str, Any] = {}  # digest -> detector
        self._of: dict[str, tuple[str, float]] = {}  # series -> (digest, saved time)
        self._lock = threading.Lock()

    def _discover(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for sub in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for cand in (sub, sub / "model"):
                if (cand / "detector.json").is_file():
                    found[sub.name] = cand
                    break
        return found

    def __contains__(self, series: str) -> bool:
        return series in self.paths

    @staticmethod
    def _digest(folder: Path) -> str:
        h = hashlib.blake2b(digest_size=16)
        for f in sorted(p for p in folder.rglob("*") if p.is_file()):
            h.update(f.relative_to(folder).as_posix().encode())
            h.update(f.read_bytes())
        return h.hexdigest()

    def get(self, series: str) -> tuple[Any, bool]:
        """(detector, loaded now) of a series."""
        from .persistence import load

        with self._lock:
            if series in self._of:
                return self._loaded[self._of[series][0]], False
            folder = self.paths[series]
            key = self._digest(folder) if self.share else f"{series}:{folder}"
            if key not in self._loaded:
                det = load(folder)
                if self.compile and "compile" in det.get_params():
                    det.set_params(compile=True).warm_up()
                self._loaded[key] = det
            self._of[series] = (key, (folder / "detector.json").stat().st_mtime)
            return self._loaded[key], True

    def saved_at(self, series: str) -> float:
        return self._of[series][1]

    @property
    def n_models(self) -> int:
        return len(self._loaded)


# ------------------------------------------------------------------------------------------- state
class StateStore:
    """SQLite: one row of scorer state per series and one row per event."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS series (id TEXT PRIMARY KEY, state BLOB NOT NULL, last_ts TEXT, updated REAL)"
        )
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS events (series TEXT, event INTEGER, status TEXT, record TEXT, "
            "PRIMARY KEY (series, event))"
        )
        self._lock = threading.Lock()

    def load(self, series: str) -> tuple[bytes, str | None] | None:
        with self._lock:
            row = self.db.execute("SELECT state, last_ts FROM series WHERE id = ?", (series,)).fetchone()
        return (bytes(row[0]), row[1]) if row else None

    def save(self, updates: list[tuple[str, bytes, str | None, list[dict], list[dict]]]) -> None:
        """One transaction: (series, state, last timestamp, opened events, closed events) each."""
        now = time.time()
        with self._lock:
            self.db.execute("BEGIN")
            try:
                for series, state, last_ts, opened, closed in updates:
                    self.db.execute(
                        "INSERT OR REPLACE INTO series (id, state, last_ts, updated) VALUES (?, ?, ?, ?)",
                        (series, state, last_ts, now),
                    )
                    for status, records in (("open", opened), ("closed", closed)):
                        for rec in records:
                            self.db.execute(
                                "INSERT OR REPLACE INTO events (series, event, status, record) VALUES (?, ?, ?, ?)",
                                (series, int(rec["event"]), status, json.dumps(rec)),
                            )
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    def events(self, series: str, status: str) -> list[dict]:
        query = "SELECT status, record FROM events WHERE series = ?"
        args: tuple = (series,)
        if status != "all":
            query += " AND status = ?"
            args = (series, status)
        with self._lock:
            rows = self.db.execute(query + " ORDER BY event", args).fetchall()
        return [{**json.loads(rec), "status": st} for st, rec in rows]

    def open_counts(self) -> dict[str, int]:
        with self._lock:
            rows = self.db.execute(
                "SELECT series, COUNT(*) FROM events WHERE status = 'open' GROUP BY series"
            ).fetchall()
        return dict(rows)

    def close(self) -> None:
        with self._lock:
            self.db.close()


# ------------------------------------------------------------------------------------------ points
def _plain(v: Any) -> Any:
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _event(row: dict[str, Any]) -> dict[str, Any]:
    """An event row for a JSON answer (non-finite numbers as null)."""
    return {k: _plain(v) for k, v in event_record(row).items()}


def _timestamp(value: Any, i: int) -> pd.Timestamp:
    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, int | float):
            return pd.Timestamp(float(value), unit="s")
        if isinstance(value, str):
            return pd.Timestamp(value)
        raise TypeError
    except (TypeError, ValueError, OverflowError):
        raise RequestError(
            422, f"point {i}: timestamp: expected ISO 8601 text or seconds since 1970, got {value!r}."
        ) from None


def parse_points(
    body: bytes, content_type: str, channels: list[str]
) -> tuple[np.ndarray, list[pd.Timestamp] | None]:
    """The points of a request body: values (n, K) and timestamps (or None). Raises RequestError."""
    K = len(channels)
    if "csv" in content_type or "text/plain" in content_type:
        rows, stamps = _csv_points(body, channels)
    else:
        try:
            doc = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RequestError(
                400, f'malformed JSON: {exc}. Send {{"points": [{{"timestamp": ..., "values": [...]}}]}}.'
            ) from None
        items = doc.get("points") if isinstance(doc, dict) else doc
        if not isinstance(items, list):
            raise RequestError(422, 'expected {"points": [...]} or a list of points.')
        rows, stamps = [], []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise RequestError(
                    422,
                    f"point {i}: expected an object with timestamp and values, got {type(item).__name__}.",
                )
            if "values" in item:
                values = item["values"]
                if not isinstance(values, list):
                    raise RequestError(422, f"point {i}: values: expected a list of {K} numbers.")
            else:
                named = {k: v for k, v in item.items() if k != "timestamp"}
                missing = [c for c in channels if c not in named]
                extra = sorted(set(named) - set(channels))
                if missing or extra:
                    raise RequestError(
                        422,
                        f"point {i}: expected the channels {channels[:10]}{' ...' if K > 10 else ''} (or a values list); "
                        f"missing {missing[:5]}, unexpected {extra[:5]}.",
                    )
                values = [named[c] for c in channels]
            rows.append(values)
            stamps.append(item.get("timestamp"))
        if all(s is None for s in stamps):
            stamps = None
        elif any(s is None for s in stamps):
            raise RequestError(422, "timestamps: give one for every point of a request or for none.")
    if not rows:
        raise RequestError(422, "expected at least one point, got none.")
    if len(rows) > MAX_POINTS:
        raise RequestError(
            422, f"expected at most {MAX_POINTS} points per request, got {len(rows)}; send them in parts."
        )
    for i, r in enumerate(rows):
        if len(r) != K:
            raise RequestError(422, f"point {i}: expected {K} values (the model's channels), got {len(r)}.")
    try:
        arr = np.array(rows, dtype=np.float64)
    except (TypeError, ValueError):
        raise RequestError(422, "values: expected numbers (no text, no null).") from None
    bad = ~np.isfinite(arr)
    if bad.any():
        i, k = map(int, np.argwhere(bad)[0])
        raise RequestError(
            422,
            f"point {i}, channel {channels[k]!r}: expected a finite number, got {arr[i, k]}. Send NaN-free points.",
        )
    ts = [_timestamp(s, i) for i, s in enumerate(stamps)] if stamps is not None else None
    if ts is not None:
        try:
            for i in range(1, len(ts)):
                if not ts[i] > ts[i - 1]:
                    what = "duplicate" if ts[i] == ts[i - 1] else "out-of-order"
                    raise RequestError(
                        422,
                        f"point {i}: {what} timestamp {ts[i].isoformat()} (after {ts[i - 1].isoformat()}); timestamps must increase.",
                    )
        except TypeError:
            raise RequestError(
                422, "timestamps: mixed time zones (some with an offset, some without)."
            ) from None
    return arr, ts


def _csv_points(body: bytes, channels: list[str]) -> tuple[list[list[Any]], list[Any] | None]:
    K = len(channels)
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise RequestError(400, "malformed CSV: not UTF-8 text.") from None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    order = None
    if lines and lines[0].split(",")[0].strip().lower() == "timestamp":
        header = [h.strip() for h in lines.pop(0).split(",")][1:]
        if sorted(header) != sorted(channels):
            raise RequestError(
                422, f"CSV header: expected timestamp and the channels {channels[:10]}, got {header[:10]}."
            )
        order = [header.index(c) for c in channels]
    rows: list[list[Any]] = []
    stamps: list[Any] = []
    for i, ln in enumerate(lines):
        fields = [f.strip() for f in ln.split(",")]
        if len(fields) == K + 1:
            stamp, vals = fields[0], fields[1:]
            try:
                stamps.append(float(stamp))
            except ValueError:
                stamps.append(stamp)
        elif len(fields) == K and order is None:
            vals = fields
            stamps.append(None)
        else:
            raise RequestError(
                422,
                f"CSV line {i + 1}: expected {K} values (or a timestamp and {K} values), got {len(fields)} fields.",
            )
        if order is not None:
            vals = [vals[j] for j in order]
        try:
            rows.append([float(v) for v in vals])
        except ValueError:
            raise RequestError(422, f"CSV line {i + 1}: expected numbers, got {ln!r}.") from None
    if any(s is None for s in stamps) and not all(s is None for s in stamps):
        raise RequestError(422, "timestamps: give one for every line of a request or for none.")
    return rows, (None if all(s is None for s in stamps) else stamps)


# ----------------------------------------------------------------------------------------- service
@dataclass
class _Job:
    series: str
    values: np.ndarray
    stamps: list[pd.Timestamp] | None
    provisional: bool
    future: asyncio.Future = field(repr=False)


class Service:
    """The scorers of the series, their batching and their state."""

    def __init__(
        self,
        models: ModelDirectory,
        store: StateStore,
        *,
        rules: EventRules | None = None,
        threshold: str | None = None,
        recalibrate_every: int | None = None,
        retrain_every: int | None = None,
        max_batch: int = 256,
        metrics: Any = None,
    ):
        self.models, self.store, self.rules = models, store, rules
        self.threshold, self.recalibrate_every = threshold, recalibrate_every
        self.retrain_every = retrain_every
        self.max_batch = max_batch
        self.metrics = metrics
        self.scorers: dict[str, StreamScorer] = {}
        self.last_ts: dict[str, pd.Timestamp | None] = {}
        self.queue: asyncio.Queue[_Job] | None = None
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="diffad-score")
        self.cold_start_s: dict[str, float] = {}

    def scorer(self, series: str) -> StreamScorer:
        """The series' scorer: from the state store after a restart, else a new one (thread: scoring)."""
        if series in self.scorers:
            return self.scorers[series]
        t0 = time.perf_counter()
        det, _ = self.models.get(series)
        saved = self.store.load(series)
        if saved is not None:
            sc = StreamScorer.loads(det, saved[0])
            self.last_ts[series] = pd.Timestamp(saved[1]) if saved[1] else None
        else:
            sc = StreamScorer(
                det,
                rules=self.rules,
                threshold=self.threshold,
                recalibrate_every=self.recalibrate_every,
                retrain_every=self.retrain_every,
            )
            self.last_ts[series] = None
        self.scorers[series] = sc
        self.cold_start_s[series] = time.perf_counter() - t0
        if self.metrics is not None:
            self.metrics.loaded(series, self.models.saved_at(series), len(self.scorers))
        return sc

    def channels(self, series: str) -> list[str]:
        det, _ = self.models.get(series)
        return list(getattr(det, "feature_names_in_", [f"ch{k}" for k in range(int(det.n_features_in_))]))

    async def submit(self, job: _Job) -> dict[str, Any]:
        assert self.queue is not None
        await self.queue.put(job)
        return await job.future

    async def worker(self) -> None:
        """Takes every queued request (one per series per batch) and scores them together."""
        assert self.queue is not None
        loop = asyncio.get_running_loop()
        later: list[_Job] = []
        while True:
            first = later.pop(0) if later else await self.queue.get()
            batch, seen = [first], {first.series}
            rest: list[_Job] = []
            for job in later:
                (rest if job.series in seen or len(batch) >= self.max_batch else batch).append(job)
                seen.add(job.series)
            while len(batch) < self.max_batch and not self.queue.empty():
                job = self.queue.get_nowait()
                if job.series in seen:
                    rest.append(job)
                else:
                    batch.append(job)
                    seen.add(job.series)
            later = rest
            try:
                answers = await loop.run_in_executor(self.pool, self._score, batch)
            except Exception as exc:  # a bug: every waiting request gets a 500, the service goes on
                answers = [exc] * len(batch)
            for job, ans in zip(batch, answers, strict=True):
                if not job.future.done():
                    if isinstance(ans, BaseException):
                        job.future.set_exception(ans)
                    else:
                        job.future.set_result(ans)

    def _score(self, batch: list[_Job]) -> list[Any]:
        t0 = time.perf_counter()
        answers: list[Any] = [None] * len(batch)
        items, where = [], []
        for i, job in enumerate(batch):
            try:
                sc = self.scorer(job.series)
                last = self.last_ts.get(job.series)
                if job.stamps is not None and last is not None:
                    try:
                        later = job.stamps[0] > last
                    except TypeError:
                        raise RequestError(
                            422, "timestamps: mixed time zones with the series' earlier points."
                        ) from None
                    if not later:
                        raise RequestError(
                            409,
                            f"timestamp {job.stamps[0].isoformat()} is not after the series' last point "
                            f"({last.isoformat()}): duplicate or out-of-order points are refused.",
                        )
                if job.stamps is None and last is not None:
                    raise RequestError(
                        422, "timestamps: this series' earlier points had timestamps; give them here too."
                    )
                items.append((sc, job.values, job.stamps))
                where.append(i)
            except RequestError as exc:
                answers[i] = exc
            except DiffadError as exc:
                answers[i] = RequestError(422, str(exc))
        results: list[Any]
        try:
            results = update_many(items) if items else []
        except DiffadError:  # one request's points failed a check: score them one at a time
            results = []
            for item in items:
                try:
                    results.append(update_many([item])[0])
                except DiffadError as one:
                    results.append(RequestError(422, str(one)))
        saves = []
        for i, res in zip(where, results, strict=True):
            job = batch[i]
            if isinstance(res, RequestError):
                answers[i] = res
                continue
            sc = self.scorers[job.series]
            if job.stamps is not None:
                self.last_ts[job.series] = job.stamps[-1]
            opened = [_event(r) for r in res.opened]
            closed = [_event(r) for r in res.closed]
            last = self.last_ts.get(job.series)
            saves.append(
                (job.series, sc.dumps(), last.isoformat() if last is not None else None, opened, closed)
            )
            answer: dict[str, Any] = {
                "series": job.series,
                "received": len(job.values),
                "final": [
                    {
                        "position": int(p),
                        "timestamp": _plain(lab) if job.stamps is not None else None,
                        "score": _plain(float(s)),
                        "flag": int(f),
                    }
                    for p, lab, s, f in zip(res.positions, res.labels, res.scores, res.flags, strict=True)
                ],
                "events_opened": opened,
                "events_closed": closed,
                "open_event": _event(cur) if (cur := sc.events.current()) is not None else None,
                "threshold": _plain(res.threshold),
                "pending": sc.n_seen - sc.n_final,
            }
            if job.provisional:
                start, prov = sc.provisional()
                answer["provisional"] = {"start": start, "scores": [_plain(float(v)) for v in prov]}
            answers[i] = answer
            if self.metrics is not None:
                self.metrics.ingested(
                    job.series, len(job.values), sc.events.current() is not None, sc.retrains
                )
        if saves:
            self.store.save(saves)
        if self.metrics is not None:
            self.metrics.batch(time.perf_counter() - t0, len(items))
        return answers


class Metrics:
    """Prometheus metrics of one service (its own registry)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.points = Counter(
            "diffad_points_ingested", "Points received, by series", ["series"], registry=self.registry
        )
        self.latency = Histogram(
            "diffad_request_seconds",
            "Time to answer a points request (queueing and scoring)",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        self.scoring = Histogram(
            "diffad_scoring_seconds",
            "Time to score one batch of requests",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "diffad_batch_series",
            "Series scored together in one batch",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=self.registry,
        )
        self.open = Gauge("diffad_open_events", "Open events, by series", ["series"], registry=self.registry)
        self.age = Gauge(
            "diffad_model_age_seconds",
            "Seconds since the series' model was saved",
            ["series"],
            registry=self.registry,
        )
        self._retrains: dict[str, int] = {}
        self.series = Gauge("diffad_series_loaded", "Series with a scorer in memory", registry=self.registry)
        self.retrains = Gauge(
            "diffad_model_retrains",
            "Models refitted in the background and swapped in (--retrain-every), by series",
            ["series"],
            registry=self.registry,
        )

    def loaded(self, series: str, saved_at: float, count: int) -> None:
        self.age.labels(series).set_function(lambda: time.time() - saved_at)
        self.series.set(count)

    def ingested(self, series: str, n: int, open_event: bool, retrains: int = 0) -> None:
        now = time.time()
        self.points.labels(series).inc(n)
        self.open.labels(series).set(1 if open_event else 0)
        if (
            retrains and self._retrains.get(series) != retrains
        ):  # a refitted model took over: its age restarts
            self._retrains[series] = retrains
            self.retrains.labels(series).set(retrains)
            self.age.labels(series).set_function(lambda: time.time() - now)

    def batch(self, seconds: float, size: int) -> None:
        self.scoring.observe(seconds)
        self.batch_size.observe(size)

    def text(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


def create_app(
    models: str | Path,
    *,
    state: str | Path | None = None,
    token: str | None = None,
    rules: EventRules | None = None,
    threshold: str | None = None,
    recalibrate_every: int | None = None,
    retrain_every: int | None = None,
    share: bool = True,
    compile: bool = False,
    max_batch: int = 256,
):
    """The FastAPI application of :mod:`diffad.serve` (see the module doc)."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Query, Request
    from fastapi.responses import JSONResponse, Response

    directory = ModelDirectory(models, share=share, compile=compile)
    store = StateStore(state or directory.root / "serve-state.sqlite")
    metrics = Metrics()
    service = Service(
        directory,
        store,
        rules=rules,
        threshold=threshold,
        recalibrate_every=recalibrate_every,
        retrain_every=retrain_every,
        max_batch=max_batch,
        metrics=metrics,
    )

    @asynccontextmanager
    async def lifespan(app):
        service.queue = asyncio.Queue()
        task = asyncio.create_task(service.worker())
        for series, n in store.open_counts().items():
            metrics.open.labels(series).set(n)
        try:
            yield
        finally:
            task.cancel()
            service.pool.shutdown(wait=True)
            store.close()

    app = FastAPI(title="diffad", summary="Live anomaly scores and events of many series", lifespan=lifespan)
    app.state.service = service

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if token is not None and request.url.path != "/healthz":
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return JSONResponse(
                    {
                        "error": "missing or wrong bearer token: send the header 'Authorization: Bearer <token>'."
                    },
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        return await call_next(request)

    def known(series: str) -> None:
        if series not in directory:
            raise RequestError(
                404,
                f"unknown series {series!r}: no model for it in {directory.root} ({len(directory.paths)} series there; GET /v1/series lists them).",
            )

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {
            "status": "ok",
            "series": len(directory.paths),
            "loaded": len(service.scorers),
            "models": directory.n_models,
        }

    @app.get("/metrics")
    async def prometheus() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(metrics.text(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/series")
    async def list_series() -> dict[str, Any]:
        rows = []
        for s in directory.paths:
            sc = service.scorers.get(s)
            rows.append(
                {
                    "series": s,
                    "loaded": sc is not None,
                    "received": sc.n_seen if sc else None,
                    "final": sc.n_final if sc else None,
                }
            )
        return {"series": rows}

    @app.post("/v1/series/{series}/points")
    async def points(series: str, request: Request, provisional: bool = False) -> JSONResponse:
        t0 = time.perf_counter()
        try:
            known(series)
            channels = await asyncio.get_running_loop().run_in_executor(
                service.pool, service.channels, series
            )
            values, stamps = parse_points(
                await request.body(), request.headers.get("content-type", ""), channels
            )
            job = _Job(series, values, stamps, provisional, asyncio.get_running_loop().create_future())
            answer = await service.submit(job)
        except RequestError as exc:
            return error(exc.status, str(exc))
        except DiffadError as exc:
            return error(422, str(exc))
        metrics.latency.observe(time.perf_counter() - t0)
        return JSONResponse(answer)

    @app.get("/v1/series/{series}/events")
    async def events(series: str, status: str = Query("all")) -> JSONResponse:
        try:
            known(series)
            if status not in ("all", "open", "closed"):
                raise RequestError(422, f"status: expected all, open or closed, got {status!r}.")
        except RequestError as exc:
            return error(exc.status, str(exc))
        return JSONResponse({"series": series, "events": store.events(series, status)})

    return app


def check_bind(host: str, token: str | None) -> None:
    """Any address but loopback needs a token."""
    if host not in LOOPBACK and not token:
        raise ConfigError(
            f"--host {host}: listening beyond this machine needs a bearer token: pass --token or set DIFFAD_TOKEN "
            "(clients then send 'Authorization: Bearer <token>'), or keep the default --host 127.0.0.1."
        )


def run(
    models: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    log_level: str = "info",
    **options: Any,
) -> None:
    """Serve ``models`` with uvicorn until interrupted (``options``: those of :func:`create_app`)."""
    import uvicorn

    check_bind(host, token)
    app = create_app(models, token=token, **options)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
