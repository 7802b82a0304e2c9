"""Fleets: fit and score many series at once on a Dask cluster (``diffad fleet``).

One series is one host or service with its own channels. :func:`run` takes a fleet (a folder with one
sub-folder per series, a glob of single series files, one long table with a series-id column, a manifest,
or a mapping of series in memory), runs one task per series on a ``dask.distributed`` cluster (a
``LocalCluster`` on this machine, or an existing one by its address) and writes:

- ``OUT/<series>/``: the series' run folder, as ``diffad detect`` writes it (scores, events, report,
  model), or its model folder (``mode="fit"``);
- ``OUT/summary.csv`` (and ``summary.parquet`` when pyarrow is installed): one row per series, ranked by
  the highest event severity (columns: :data:`SUMMARY_COLUMNS`);
- ``OUT/report.html``: the same ranking, each series linked to its own report;
- ``OUT/fleet.json``: the run's envelope (detector, parameters, counts).

Reading happens on the workers: the client holds only the series' names and paths. A series that fails
(a bad file, too short, a NaN-only channel) is recorded with its error and the others go on. Each
finished series leaves a small record in ``OUT/.fleet/`` with a fingerprint of its data and of the
configuration; running the same command again skips the series whose fingerprint matches, so a killed
run (or a lost worker) costs at most the series in flight. Each series is computed exactly as
``diffad detect`` computes it alone, with the same seed and torch thread count.

Needs the ``fleet`` extra: ``pip install 'diffad[fleet]'`` (``dask[distributed]``).
"""

from __future__ import annotations

import datetime
import glob as globlib
import hashlib
import html
import io
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._version import __version__
from .data.files import csv_delimiter
from .exceptions import ConfigError, DataValidationError, DiffadError, PersistenceError
from .fsio import atomic_write_bytes, atomic_write_text, read_envelope
from .parallel import dask_client, require_dask, worker_setup

__all__ = ["run", "discover", "SeriesSource", "SUMMARY_COLUMNS", "FLEET_FORMAT", "MODES", "require_dask"]

FLEET_FORMAT = "diffad-fleet"
MODES = ("detect", "fit", "score")
STATE = ".fleet"  # per-series records (fingerprint and summary row), written after the series folder
SERIES_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".npz", ".npy")
PART_NAMES = ("part", "split")
SUMMARY_COLUMNS = (
    "series",
    "folder",
    "status",
    "reused",
    "n_train",
    "n_test",
    "channels",
    "flagged",
    "events",
    "max_severity",
    "grade",
    "top_channels",
    "warnings",
    "AUC-PR",
    "VUS-PR",
    "fit_s",
    "score_s",
    "task_s",
    "model",
    "error",
)


# ------------------------------------------------------------------------------------------ sources
@dataclass(frozen=True)
class SeriesSource:
    """Where one series is read from: small, sent to a worker, which reads the data itself.

    ``kind`` is ``"files"`` (``train`` / ``test`` / ``labels`` paths), ``"file"`` (one file split by
    ``train_fraction``), ``"table"`` (the rows of ``key`` in the long table ``path``, split by its part
    column or by ``train_fraction``) or ``"memory"`` (``frames``: train, test, labels given in Python).
    """

    id: str
    folder: str
    kind: str
    train: str | None = None
    test: str | None = None
    labels: str | None = None
    path: str | None = None
    key: Any = None
    id_col: str = "series"
    part_col: str | None = None
    train_fraction: float | None = None
    timestamp_col: str | None = None
    label_col: str | None = None
    frames: tuple | None = field(default=None, repr=False)

    def describe(self) -> dict[str, str]:
        """Where the series was read from, for its report and run.json."""
        if self.kind == "files":
            parts = {"train": self.train, "test": self.test, "labels": self.labels}
            return {"series": self.id} | {k: str(v) for k, v in parts.items() if v}
        if self.kind in ("file", "table"):
            split = (
                f"part column {self.part_col}" if self.part_col else f"train_fraction {self.train_fraction}"
            )
            where = f"{self.path}" + (
                f", rows with {self.id_col} = {self.key}" if self.kind == "table" else ""
            )
            return {"series": self.id, "file": where, "split": split}
        return {"series": self.id, "data": "given in Python"}

    def read(self) -> tuple[pd.DataFrame | None, pd.DataFrame | None, np.ndarray | None]:
        """(train frame, test frame, test labels), each None where the series has no such part."""
        from .data.files import read_frame

        opts: dict[str, Any] = {"timestamp_col": self.timestamp_col, "label_col": self.label_col}
        if self.kind == "files":
            train = read_frame(self.train, **opts)[0] if self.train else None
            test, y = read_frame(self.test, self.labels, **opts) if self.test else (None, None)
            return train, test, y
        if self.kind == "memory":
            return _memory_frames(self.frames)
        if self.kind == "file":
            frame, y = read_frame(str(self.path), **opts)
            return _split(frame, y, self.train_fraction, str(self.path))
        return self._read_table()

    def _read_table(self) -> tuple[pd.DataFrame | None, pd.DataFrame | None, np.ndarray | None]:
        from .data.files import _frame_to_series, frame_of

        rows = _table_rows(Path(str(self.path)), self.id_col, self.key).drop(columns=[self.id_col])
        where = f"series {self.id!r} of {self.path}"

        def rows_of(part: pd.DataFrame, what: str) -> tuple[pd.DataFrame, np.ndarray | None]:
            s = _frame_to_series(
                part.reset_index(drop=True), f"{what} rows of {where}", self.timestamp_col, self.label_col
            )
            return frame_of(s), s.labels

        if self.part_col is None:
            frame, y = rows_of(rows, "the")
            return _split(frame, y, self.train_fraction, where)
        part = rows.pop(self.part_col).astype(str).str.strip().str.lower()
        bad = sorted(set(part) - {"train", "test"})
        if bad:
            raise DataValidationError(
                f"{where}: expected the {self.part_col!r} column to say train or test, got {bad[:5]}."
            )
        train = rows_of(rows[part == "train"], "train")[0] if (part == "train").any() else None
        test, y = rows_of(rows[part == "test"], "test") if (part == "test").any() else (None, None)
        return train, test, y


def _memory_frames(frames: Any) -> tuple[pd.DataFrame | None, pd.DataFrame | None, np.ndarray | None]:
    def frame(x: Any) -> pd.DataFrame | None:
        if x is None:
            return None
        if isinstance(x, pd.DataFrame):
            return x
        a = np.asarray(x, dtype=np.float64)
        a = a[:, None] if a.ndim == 1 else a
        return pd.DataFrame(a, columns=[f"ch{k}" for k in range(a.shape[1])])

    train, test, labels = frames
    y = None if labels is None else np.asarray(labels)
    return frame(train), frame(test), y


def _split(
    frame: pd.DataFrame, y: np.ndarray | None, fraction: float | None, where: str
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray | None]:
    """The leading ``fraction`` of a series for training, the rest for the test."""
    if fraction is None:
        raise ConfigError(
            f"{where}: one series with no train / test parts; give train_fraction (--train-fraction), the "
            "leading share of each series to train on, e.g. 0.5."
        )
    cut = int(round(fraction * len(frame)))
    return frame.iloc[:cut], frame.iloc[cut:], (None if y is None else y[cut:])


def _table_rows(path: Path, id_col: str, key: Any) -> pd.DataFrame:
    """The rows of one series of a long table (Parquet: read with a filter; CSV: in chunks, so that a
    worker never holds more of the table than one chunk and its series)."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path, filters=[(id_col, "==", key)])
    chunks = pd.read_csv(path, sep=csv_delimiter(path), chunksize=200_000)
    return pd.concat([c[c[id_col] == key] for c in chunks])


def _series_file(folder: Path, stem: str) -> Path | None:
    found = [folder / f"{stem}{s}" for s in SERIES_SUFFIXES if (folder / f"{stem}{s}").is_file()]
    if len(found) > 1:
        raise DataValidationError(
            f"series folder {folder}: expected one {stem} file, got {[p.name for p in found]}. Keep one."
        )
    return found[0] if found else None


def _safe_folders(ids: list[str]) -> list[str]:
    """A folder name for each series id: its characters outside [A-Za-z0-9._-] as '_', unique."""
    out, seen = [], set()
    for sid in ids:
        name = re.sub(r"[^A-Za-z0-9._-]", "_", sid).lstrip(".") or "series"
        base, n = name, 2
        while name.lower() in seen:
            name, n = f"{base}-{n}", n + 1
        seen.add(name.lower())
        out.append(name)
    return out


def discover(
    source: str | Path | Mapping[str, Any],
    *,
    id_col: str = "series",
    train_fraction: float | None = None,
    timestamp_col: str | None = None,
    label_col: str | None = None,
) -> list[SeriesSource]:
    """The series of a fleet, without reading their data.

    ``source`` is one of:

    - a folder with one sub-folder per series, each holding ``train.*`` and / or ``test.*`` (CSV, Parquet,
      NPZ, NPY) and optionally ``labels.*`` (labels of the test part);
    - a glob pattern (``"hosts/*.csv"``): each file is one series, split by ``train_fraction``;
    - a long table (``.csv`` / ``.parquet``) with a series-id column (``id_col``), the channels, and
      optionally a timestamp, a label column and a ``part`` (or ``split``) column saying ``train`` /
      ``test`` for each row (else ``train_fraction`` splits each series by time);
    - a manifest (``.json``: a list of ``{"series", "train", "test", "labels"}``; or a CSV with columns
      ``series``, ``train``, ``test`` and optionally ``labels``), paths relative to the manifest;
    - a mapping ``{series id: (train, test)}`` or ``(train, test, labels)`` or a dict with those keys
      (arrays or DataFrames; ``None`` for a missing part).
    """
    opts: dict[str, Any] = {"timestamp_col": timestamp_col, "label_col": label_col}
    if train_fraction is not None and not 0.0 < train_fraction < 1.0:
        raise ConfigError(f"train_fraction: expected a number between 0 and 1, got {train_fraction!r}.")
    if isinstance(source, Mapping):
        ids = [str(k) for k in source]
        items = []
        for sid, folder, value in zip(ids, _safe_folders(ids), source.values(), strict=True):
            if isinstance(value, Mapping):
                value = (value.get("train"), value.get("test"), value.get("labels"))
            value = tuple(value) + (None,) * (3 - len(tuple(value)))
            items.append(SeriesSource(sid, folder, "memory", frames=value[:3]))
        return _nonempty(items, "the mapping")
    text = str(source)
    path = Path(source)
    if any(c in text for c in "*?[") and not path.exists():
        files = sorted(Path(p) for p in globlib.glob(text) if Path(p).is_file())
        ids = [p.name.split(".")[0] for p in files]
        if len(set(ids)) != len(ids):
            ids = [str(p) for p in files]
        return _nonempty(
            [
                SeriesSource(sid, folder, "file", path=str(p), train_fraction=train_fraction, **opts)
                for sid, folder, p in zip(ids, _safe_folders(ids), files, strict=True)
            ],
            f"the pattern {text!r}",
        )
    if path.is_dir():
        subs = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
        ids = [p.name for p in subs]
        items = []
        for sid, folder, sub in zip(ids, _safe_folders(ids), subs, strict=True):
            train, test = _series_file(sub, "train"), _series_file(sub, "test")
            if train is None and test is None:
                continue  # not a series folder
            labels = _series_file(sub, "labels")
            items.append(
                SeriesSource(
                    sid,
                    folder,
                    "files",
                    train=str(train) if train else None,
                    test=str(test) if test else None,
                    labels=str(labels) if labels else None,
                    **opts,
                )
            )
        return _nonempty(items, f"folder {text!r} (sub-folders with train.* / test.* files)")
    if not path.is_file():
        raise DataValidationError(
            f"fleet source {text!r}: expected a folder of series, a glob pattern, a table or a manifest, got "
            "a path that does not exist. Check the path."
        )
    if path.suffix == ".json":
        return _manifest(path, json.loads(path.read_text()), opts)
    columns = _columns(path)
    if {"train", "test"} <= set(columns):  # a manifest: a row per series naming its files
        from .data.files import read_csv_table

        return _manifest(path, read_csv_table(path).to_dict(orient="records"), opts)
    if id_col not in columns:
        raise DataValidationError(
            f"fleet table {text!r}: expected a series-id column {id_col!r} (--id-col), got columns "
            f"{columns[:12]}. Name the column that says which series each row belongs to."
        )
    part = next((c for c in columns if c.lower() in PART_NAMES), None)
    keys = _table_keys(path, id_col)
    ids = [str(k) for k in keys]
    return _nonempty(
        [
            SeriesSource(
                sid,
                folder,
                "table",
                path=str(path),
                key=key,
                id_col=id_col,
                part_col=part,
                train_fraction=train_fraction,
                **opts,
            )
            for sid, folder, key in zip(ids, _safe_folders(ids), keys, strict=True)
        ],
        f"table {text!r}",
    )


def _nonempty(items: list[SeriesSource], where: str) -> list[SeriesSource]:
    if not items:
        raise DataValidationError(f"fleet: expected at least one series in {where}, found none.")
    return items


def _columns(path: Path) -> list[str]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    return [str(c) for c in pd.read_csv(path, sep=csv_delimiter(path), nrows=0).columns]


def _table_keys(path: Path, id_col: str) -> list[Any]:
    """The series ids of a long table, in order of first appearance (only that column is read)."""
    if path.suffix == ".parquet":
        col = pd.read_parquet(path, columns=[id_col])[id_col]
    else:
        col = pd.read_csv(path, sep=csv_delimiter(path), usecols=[id_col])[id_col]
    return [k.item() if isinstance(k, np.generic) else k for k in pd.unique(col.dropna())]


def _manifest(path: Path, records: Any, opts: dict) -> list[SeriesSource]:
    if not isinstance(records, list) or not all(isinstance(r, Mapping) for r in records):
        raise DataValidationError(
            f"fleet manifest {path}: expected a list of entries with series, train, test (and labels)."
        )
    base = path.parent

    def at(value: Any) -> str | None:
        if value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == "":
            return None
        p = Path(str(value))
        return str(p if p.is_absolute() else base / p)

    ids = [str(r.get("series", r.get("id", ""))) for r in records]
    if "" in ids:
        raise DataValidationError(f"fleet manifest {path}: every entry needs a series name ('series').")
    if len(set(ids)) != len(ids):
        raise DataValidationError(f"fleet manifest {path}: series names must be unique.")
    return _nonempty(
        [
            SeriesSource(
                sid,
                folder,
                "files",
                train=at(r.get("train")),
                test=at(r.get("test")),
                labels=at(r.get("labels")),
                **opts,
            )
            for sid, folder, r in zip(ids, _safe_folders(ids), records, strict=True)
        ],
        f"manifest {path}",
    )


# --------------------------------------------------------------------------------------- one series
@dataclass(frozen=True)
class Job:
    """What every series' task does: ``mode``, the (unfitted) ``detector`` to clone, ``models`` (the
    folder of a ``fit`` run, for ``mode="score"``; with ``shared``, the one model folder every series is
    scored with) and the torch ``threads`` of each task."""

    mode: str
    detector: Any = None
    models: str | None = None
    threads: int = 1
    shared: bool = False

    def config(self) -> dict[str, Any]:
        det = self.detector
        return {
            "mode": self.mode,
            "detector": type(det).__name__ if det is not None else None,
            "params": det.get_params() if det is not None else None,
            "models": self.models,
            "threads": self.threads,
            "diffad": __version__,
        } | ({"shared": True} if self.shared else {})


def _hash_frame(h: Any, frame: pd.DataFrame | None) -> None:
    if frame is None:
        h.update(b"none")
        return
    h.update(json.dumps([str(c) for c in frame.columns]).encode())
    h.update(np.ascontiguousarray(frame.to_numpy(np.float64)).tobytes())
    if isinstance(frame.index, pd.DatetimeIndex):
        h.update(frame.index.asi8.tobytes())


def fingerprint(
    train: pd.DataFrame | None, test: pd.DataFrame | None, labels: Any, job: Job, folder: str = ""
) -> str:
    """Hash of a series' data and of the job's configuration (with ``mode="score"``, of the series' own
    model in ``job.models / folder`` too): a finished series is reused only when both are the same."""
    h = hashlib.blake2b(digest_size=16)
    _hash_frame(h, train)
    _hash_frame(h, test)
    h.update(b"none" if labels is None else np.asarray(labels, dtype=np.int8).tobytes())
    h.update(json.dumps(job.config(), sort_keys=True, default=str).encode())
    if job.mode == "score" and job.models:  # a refitted model is a new configuration
        detector_json = Path(job.models) / ("" if job.shared else folder) / "detector.json"
        h.update(detector_json.read_bytes() if detector_json.is_file() else b"")
    return h.hexdigest()


def _state_path(out: Path, folder: str) -> Path:
    return out / STATE / f"{folder}.json"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if not isinstance(exc, DiffadError) else text


def run_series(src: SeriesSource, job: Job, out: str) -> dict[str, Any]:
    """Run one series (on a worker) and return its summary row; never raises for the series' own
    errors, which go into the row."""
    worker_setup(job.threads)
    root = Path(out)
    row: dict[str, Any] = {"series": src.id, "folder": src.folder, "status": "failed", "reused": False}
    fp = ""
    t0 = time.perf_counter()
    try:
        train, test, labels = src.read()
        fp = fingerprint(train, test, labels, job, src.folder)
        state = read_envelope(_state_path(root, src.folder), FLEET_FORMAT)
        if (
            state
            and state.get("fingerprint") == fp
            and state["row"].get("status") == "ok"
            and (root / src.folder).is_dir()
        ):
            return {**state["row"], "reused": True}
        row.update(_compute(src, job, root, train, test, labels))
        row["status"] = "ok"
    except Exception as exc:  # the series' failure is its row; the fleet goes on
        row["error"] = _one_line(exc)
    row["task_s"] = round(time.perf_counter() - t0, 3)  # reading, fitting, scoring and writing
    record = {"format": FLEET_FORMAT, "fingerprint": fp, "row": row}
    atomic_write_text(_state_path(root, src.folder), json.dumps(record, indent=1, default=_plain))
    return row


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return str(v)


def _need(frame: pd.DataFrame | None, part: str, src: SeriesSource, mode: str) -> pd.DataFrame:
    if frame is None or len(frame) == 0:
        raise DataValidationError(f"series {src.id!r}: `fleet {mode}` needs a {part} part, and it has none.")
    return frame


def _compute(src: SeriesSource, job: Job, root: Path, train: Any, test: Any, labels: Any) -> dict[str, Any]:
    from sklearn.base import clone

    from .fsio import output_folder
    from .persistence import load, save, write_model
    from .report import write_frame_files

    target = root / src.folder
    row: dict[str, Any] = {}
    if job.mode == "score":
        det = load(Path(str(job.models)) / ("" if job.shared else src.folder))
        if job.shared:
            row["model"] = Path(str(job.models)).name
    else:
        train = _need(train, "train", src, job.mode)
        det = clone(job.detector)
        row["n_train"] = len(train)
        t0 = time.perf_counter()
        det.fit(train)
        row["fit_s"] = round(time.perf_counter() - t0, 3)
        if job.mode == "fit":
            save(det, target, option="the series' model folder")
            row["channels"] = train.shape[1]
            return row
    test = _need(test, "test", src, job.mode)
    with output_folder(target, "run", option="the series' run folder") as stage:
        if job.mode == "detect":
            write_model(det, stage / "model")
        t0 = time.perf_counter()
        result = write_frame_files(stage, det, test, labels, source=src.describe(), command="diffad.fleet")
        row["score_s"] = round(time.perf_counter() - t0, 3)
    events = result["events"]
    row.update(
        n_test=len(test),
        channels=test.shape[1],
        flagged=int(np.asarray(result["preds"]).sum()),
        events=len(events),
        warnings=";".join(w.code for w in result["warnings"]),
    )
    if len(events):
        top = events.loc[events["severity"].idxmax()]
        row.update(
            max_severity=float(top["severity"]), grade=str(top["grade"]), top_channels=str(top["channels"])
        )
    if result["metrics"]:
        honest = result["metrics"]["honest"]
        row.update({k: float(honest[k]) for k in ("AUC-PR", "VUS-PR") if k in honest})
    return row


# ------------------------------------------------------------------------------------------- a fleet
def check_fleet_out(out: Path) -> None:
    """``out`` must be new, empty, or the folder of an earlier fleet run (which is continued)."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise PersistenceError(
            f"fleet folder {str(out)!r}: expected a folder, got a file or a link. Choose another --out."
        )
    if out.is_dir() and any(out.iterdir()) and read_envelope(out / "fleet.json", FLEET_FORMAT) is None:
        raise PersistenceError(
            f"fleet folder {str(out)!r}: expected a new path, an empty folder or an earlier diffad fleet run "
            "(which is continued), got a folder of other files. diffad never deletes what it did not write: "
            "choose another --out."
        )


def run(
    source: str | Path | Mapping[str, Any] | Iterable[SeriesSource],
    out: str | Path,
    *,
    detector: Any = None,
    mode: str = "detect",
    models: str | Path | None = None,
    client: Any = None,
    workers: int | None = None,
    scheduler: str | None = None,
    threads: int = 1,
    progress: bool = True,
    on_row: Callable[[dict], None] | None = None,
    shared: bool = False,
    **discover_options: Any,
) -> pd.DataFrame:
    """Run ``mode`` (``"detect"``: fit and score; ``"fit"``; ``"score"`` with the ``models`` of an
    earlier ``fit`` run) over every series of ``source`` (see :func:`discover`; ``discover_options`` go
    there) and write the fleet folder ``out`` (module doc). Returns the summary, ranked.

    ``detector`` is an unfitted detector (each series fits a clone of it; ``diffad.ImDiffusionDetector.fast()``
    by default). The work runs on ``client`` when given, else on the cluster at ``scheduler``, else on a
    new ``LocalCluster`` of ``workers`` processes (default: the cores / ``threads``), each task with
    ``threads`` torch threads. Finished series of an earlier run with the same data and configuration
    are reused.

    ``shared=True`` (``mode="detect"`` only) fits one model per set of series with the same channels, on
    their training parts put end to end, saves it in ``OUT/_shared/<group>/`` and scores every series of
    the group with it (:func:`fit_group`); the groups are listed in ``fleet.json``.
    """
    from .validation import check_option

    check_option(mode, MODES, name="mode")
    if shared and mode != "detect":
        raise ConfigError(
            f"--shared: expected `fleet detect` (one model fitted on all series, then each scored), got `fleet {mode}`."
        )
    out = Path(out)
    check_fleet_out(out)
    if mode == "score":
        if models is None or not Path(models).is_dir():
            raise ConfigError(f"--models: expected the folder of a `fleet fit` run, got {models!r}.")
        detector = None
    elif detector is None:
        from .detectors.imdiffusion import ImDiffusionDetector

        detector = ImDiffusionDetector.fast()
    if detector is not None:
        from sklearn.base import clone

        detector = clone(detector)  # the caller's detector stays as it was
        detector.set_params(
            **{k: False for k in ("verbose",) if k in detector.get_params()}
        )  # no bars on workers
        detector._check_params()
    sources = (
        list(source) if not isinstance(source, str | Path | Mapping) else discover(source, **discover_options)
    )
    job = Job(mode, detector, str(models) if models is not None else None, threads, shared=shared)
    (out / STATE).mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    _write_envelope(out, job, len(sources), started, None)
    rows: list[dict] = []
    t0 = time.perf_counter()
    groups: list[dict] = []
    with dask_client(client, workers, scheduler, threads) as c:
        from distributed import as_completed

        if shared:
            if any(src.folder == SHARED for src in sources):
                raise ConfigError(
                    f"--shared: a series named {SHARED!r} would share the folder of the shared models; rename it."
                )
            pairs, rows, groups = _shared_jobs(c, sources, job, out)
        else:
            pairs = [(src, job) for src in sources]
        futures = {c.submit(run_series, src, job=j, out=str(out), pure=False): src for src, j in pairs}
        bar = _progress(len(futures) + len(rows), progress)
        bar.update(len(rows))  # series whose shared fit failed
        for fut in as_completed(futures):
            row, exc = _result(fut)
            if exc is not None:
                row = _failed_row(futures[fut], exc)
            rows.append(row)
            if on_row is not None:
                on_row(row)
            bar.update(1)
            bar.set_postfix(failed=sum(r["status"] != "ok" for r in rows))
        bar.close()
    summary = _summary(rows)
    _write_outputs(out, summary, job)
    _write_envelope(out, job, len(sources), started, time.perf_counter() - t0, summary, groups)
    return summary


# ------------------------------------------------------------------------------------ shared models
SHARED = "_shared"  # OUT/_shared/<group>/: the models of a shared run


def series_channels(src: SeriesSource) -> list[str] | str:
    """The channel names of a series' training part (on a worker), or its error as one line."""
    try:
        train = _need(src.read()[0], "train", src, "detect")
        return [str(c) for c in train.columns]
    except Exception as exc:  # the series' failure is its row
        return _one_line(exc)


def fit_group(sources: list[SeriesSource], job: Job, out: str, group: str) -> dict[str, Any]:
    """Fit one model (on a worker) on the training parts of ``sources`` (the same channels) put end to
    end, and save it in ``OUT/_shared/<group>/``; reused when the data and configuration are those of an
    earlier run. Returns ``{"group", "series", "n_train", "fit_s", "reused"}`` or ``{"error"}``.

    Putting the parts end to end makes the ``window - 1`` windows of a windowed detector that straddle
    two series a mix of both: a few hundred of the tens of thousands of windows of fleets of SMD's size."""
    from sklearn.base import clone

    from .persistence import save

    worker_setup(job.threads)
    root = Path(out)
    info: dict[str, Any] = {"group": group, "series": [s.id for s in sources]}
    try:
        frames = [_need(src.read()[0], "train", src, "detect") for src in sources]
        h = hashlib.blake2b(digest_size=16)
        for frame in frames:
            _hash_frame(h, frame)
        h.update(json.dumps(job.config(), sort_keys=True, default=str).encode())
        fp = h.hexdigest()
        target = root / SHARED / group
        state_path = root / STATE / f"{SHARED}-{group}.json"
        state = read_envelope(state_path, FLEET_FORMAT)
        if state and state.get("fingerprint") == fp and (target / "detector.json").is_file():
            return {**state["info"], "reused": True}
        det = clone(job.detector)
        train = pd.concat(frames, ignore_index=True)
        t0 = time.perf_counter()
        det.fit(train)
        info.update(n_train=len(train), fit_s=round(time.perf_counter() - t0, 3), reused=False)
        save(det, target, option="the shared model folder")
        record = {"format": FLEET_FORMAT, "fingerprint": fp, "info": info}
        atomic_write_text(state_path, json.dumps(record, indent=1, default=_plain))
        return info
    except Exception as exc:  # the group's failure is its series' rows
        return {**info, "error": _one_line(exc)}


def _failed_row(src: SeriesSource, error: BaseException | str, **extra: Any) -> dict[str, Any]:
    why = error if isinstance(error, str) else _one_line(error)
    return {
        "series": src.id,
        "folder": src.folder,
        "status": "failed",
        "reused": False,
        **extra,
        "error": why,
    }


def _result(future: Any) -> tuple[Any, BaseException | None]:
    """A task's ``(result, None)``, or ``(None, exc)`` where the task itself failed on the cluster (its
    workers died running it, ``KilledWorker``, e.g. out of memory): that series fails, the run goes on."""
    try:
        return future.result(), None
    except Exception as exc:
        return None, exc


def _shared_jobs(
    c: Any, sources: list[SeriesSource], job: Job, out: Path
) -> tuple[list[tuple[SeriesSource, Job]], list[dict], list[dict]]:
    """Group the series by channels, fit each group's model on the cluster; returns the scoring task of
    every series (its source and job), the rows of the series that failed already, and the groups."""
    channels = []
    for fut in c.map(series_channels, sources, pure=False):
        value, exc = _result(fut)
        channels.append(_one_line(exc) if exc is not None else value)
    failed: list[dict] = []
    members: dict[str, list[SeriesSource]] = {}
    names: dict[str, list[str]] = {}
    for src, chans in zip(sources, channels, strict=True):
        if isinstance(chans, str):
            failed.append(_failed_row(src, chans))
            continue
        group = "channels-" + hashlib.blake2b(json.dumps(chans).encode(), digest_size=5).hexdigest()
        members.setdefault(group, []).append(src)
        names[group] = chans
    submitted = {g: c.submit(fit_group, srcs, job, str(out), g, pure=False) for g, srcs in members.items()}
    pairs: list[tuple[SeriesSource, Job]] = []
    groups: list[dict] = []
    for g, fut in submitted.items():
        info, exc = _result(fut)
        if exc is not None:
            info = {"group": g, "series": [s.id for s in members[g]], "error": _one_line(exc)}
        groups.append({**info, "channels": len(names[g])})
        if "error" in info:
            failed += [_failed_row(s, f"the shared model {g}: {info['error']}", model=g) for s in members[g]]
            continue
        scoring = Job("score", None, str(out / SHARED / g), job.threads, shared=True)
        pairs += [(s, scoring) for s in members[g]]
    return pairs, failed, groups


def _progress(total: int, show: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="series", unit="series", disable=not show)


def _summary(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    for col in SUMMARY_COLUMNS:
        if col not in df.columns:
            df[col] = np.nan
    df = df[list(SUMMARY_COLUMNS)]
    df["_failed"] = df["status"] != "ok"
    df = df.sort_values(
        ["_failed", "max_severity", "series"], ascending=[True, False, True], na_position="last"
    )
    return df.drop(columns="_failed").reset_index(drop=True)


def _write_outputs(out: Path, summary: pd.DataFrame, job: Job) -> None:
    atomic_write_text(out / "summary.csv", summary.to_csv(index=False))
    try:
        buf = io.BytesIO()
        summary.astype({"warnings": str, "top_channels": str, "error": str, "grade": str}).to_parquet(
            buf, index=False
        )
        atomic_write_bytes(out / "summary.parquet", buf.getvalue())
    except ImportError:
        pass  # Parquet needs pyarrow ('diffad[parquet]'); the CSV has the same rows
    atomic_write_text(out / "report.html", _html(summary, job))


def _write_envelope(
    out: Path,
    job: Job,
    n: int,
    started: str,
    seconds: float | None,
    summary: pd.DataFrame | None = None,
    groups: list[dict] | None = None,
) -> None:
    env: dict[str, Any] = {"format": FLEET_FORMAT, "created": started, "series": n, **job.config()}
    if groups:
        env["shared_models"] = groups
    if summary is not None:
        env.update(
            finished=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            wall_s=round(seconds or 0.0, 2),
            ok=int((summary["status"] == "ok").sum()),
            failed=int((summary["status"] != "ok").sum()),
            reused=int(summary["reused"].fillna(False).astype(bool).sum()),
        )
    atomic_write_text(out / "fleet.json", json.dumps(env, indent=2, default=_plain))


def _html(summary: pd.DataFrame, job: Job) -> str:
    def cell(v: Any) -> str:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return ""
        if isinstance(v, float):
            return f"{v:.3g}"
        return html.escape(str(v))

    cols = [
        "status",
        "events",
        "max_severity",
        "grade",
        "top_channels",
        "flagged",
        "AUC-PR",
        "warnings",
        "fit_s",
        "score_s",
        "error",
    ]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["rank", "series", *cols])
    body = []
    for i, r in summary.iterrows():
        link = f"{html.escape(str(r['folder']))}/report.html"
        name = html.escape(str(r["series"]))
        series = f"<a href='{link}'>{name}</a>" if r["status"] == "ok" and job.mode != "fit" else name
        body.append(
            f"<tr><td>{i + 1}</td><td>{series}</td>"
            + "".join(f"<td>{cell(r[c])}</td>" for c in cols)
            + "</tr>"
        )
    n_fail = int((summary["status"] != "ok").sum())
    return (
        "<!doctype html><meta charset=utf-8><title>diffad fleet</title>"
        f"<h1>Fleet: {len(summary)} series</h1><p>{job.mode} with {html.escape(str(job.config()['detector']))}; "
        f"{len(summary) - n_fail} finished, {n_fail} failed. Ranked by the highest event severity "
        "(0 at the threshold, 1 as far above it again); each series links to its own report.</p>"
        f"<table id=fleet border=1 cellpadding=3><tr>{head}</tr>{''.join(body)}</table>"
    )
