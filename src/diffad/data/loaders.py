"""Readers for user files and for the benchmark datasets.

``read_series(path)`` reads one CSV / Parquet / NPZ / NPY file. ``load_dataset(name)`` reads one
benchmark entity (``"SMD/machine-1-2"``, ``"SMAP"``, ``"NAB/realKnownCause/nyc_taxi"`` ...);
``load_datasets(name)`` reads every entity of a collection (``"SMD"`` gives every machine found).
The data directory comes from the ``data_dir`` argument or the ``DIFFAD_DATA`` environment variable;
there is no built-in default path.

Both the layouts of ``shared/data``-style mirrors (SMD as ``npz/``, SMAP/MSL as ``.npy.gz``) and the
original upstream layouts (SMD ``train/ test/ test_label/`` txt files, telemanom ``train/*.npy``,
PSM's three CSV files, ...) are read, so an original download needs no conversion.
"""

from __future__ import annotations

import ast
import csv
import gzip
import json
import os
import re
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import DataValidationError
from ..validation import check_index, check_labels, fail, param_hint
from .records import Dataset, ImageSet, SeriesData

__all__ = [
    "SeriesData",
    "Dataset",
    "read_series",
    "resolve_data_dir",
    "load_dataset",
    "load_datasets",
    "list_entities",
    "load_images",
    "ImageSet",
    "COLLECTIONS",
]

TIMESTAMP_NAMES = ("timestamp", "time", "date", "datetime", "ts", "timestamp_(min)")
LABEL_NAMES = ("label", "labels", "is_anomaly", "anomaly", "attack", "normal/attack")


# --------------------------------------------------------------------------------------------- files
def _label_vector(col: pd.Series, where: str) -> np.ndarray:
    if not pd.api.types.is_numeric_dtype(col):
        text = col.astype(str).str.strip().str.lower().str.replace(" ", "")
        known = {"normal": 0, "attack": 1, "anomaly": 1, "0": 0, "1": 1, "true": 1, "false": 0}
        bad = sorted(set(text) - set(known))
        if bad:
            raise fail(f"label column of {where}", "0/1 (or Normal/Attack)", f"values {bad[:5]}", "Encode labels as 0 and 1.")
        return text.map(known).to_numpy(np.int8)
    vals = col.to_numpy(dtype=np.float64)
    if np.isnan(vals).any() or not np.isin(np.unique(vals), (0.0, 1.0)).all():
        raise fail(f"label column of {where}", "0/1 values", f"values {np.unique(vals)[:5].tolist()}", "Encode labels as 0 and 1.")
    return vals.astype(np.int8)


def _frame_to_series(df: pd.DataFrame, where: str, timestamp_col: str | None, label_col: str | None) -> SeriesData:
    lower = {str(c).strip().lower(): c for c in df.columns}
    for arg, kind in ((timestamp_col, "timestamp"), (label_col, "label")):
        if arg is not None and arg not in df.columns:
            raise fail(f"{kind} column of {where}", f"one of the columns {list(map(str, df.columns))[:20]}", repr(arg), "Check the column name.")
    ts = timestamp_col if timestamp_col is not None else next((lower[n] for n in TIMESTAMP_NAMES if n in lower), None)
    lab = label_col if label_col is not None else next((lower[n] for n in LABEL_NAMES if n in lower), None)
    index = None
    if ts is not None:
        raw = df[ts]
        if pd.api.types.is_numeric_dtype(raw) and timestamp_col is None:
            index = None  # integer step counters (e.g. PSM's timestamp_(min)) are dropped, not parsed as dates
        else:
            try:
                index = pd.DatetimeIndex(pd.to_datetime(raw), name=str(ts))
            except (ValueError, TypeError, OverflowError):
                raise fail(f"timestamp column {ts!r} of {where}", "parseable dates", f"values like {raw.iloc[:2].tolist()}",
                           f"Fix the column or name another with {param_hint('timestamp_col', 'NAME')}.") from None
            check_index(index, name=where)
    labels = _label_vector(df[lab], where) if lab is not None else None
    data = df.drop(columns=[c for c in (ts, lab) if c is not None])
    bad = [str(c) for c in data.columns if not pd.api.types.is_numeric_dtype(data[c]) or pd.api.types.is_complex_dtype(data[c])]
    if bad:
        raise fail(f"columns of {where}", "numeric channels (plus an optional timestamp and label column)", f"non-numeric column(s) {bad[:10]}",
                   f"Drop or encode them; name the timestamp column with {param_hint('timestamp_col', 'NAME')}.")
    if data.shape[1] == 0:
        raise fail(where, "at least one numeric channel", "none", "Check the file.")
    return SeriesData(data.to_numpy(np.float64), index, tuple(str(c).strip() for c in data.columns), labels)


def read_series(path: str | Path, *, timestamp_col: str | None = None, label_col: str | None = None) -> SeriesData:
    """Read a series from CSV, Parquet, NPZ or NPY.

    CSV / Parquet: numeric channels; a timestamp column (named ``timestamp``, ``time``, ``date``... or
    given by ``timestamp_col``) becomes a DatetimeIndex; a label column (``label``, ``is_anomaly``,
    ``attack``... or ``label_col``) becomes ``labels``. NPZ: the values under ``values``, ``X`` or
    ``data`` (or the only array), labels under ``labels``, ``label`` or ``y``. NPY: the values.
    """
    path = Path(path)
    if not path.is_file():
        raise fail("series file", "an existing file", repr(str(path)), "Check the path.")
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".gz") else path.suffix
    suffix = suffix.lower()
    if suffix in (".csv", ".csv.gz", ".txt"):
        return _frame_to_series(read_csv_table(path), str(path), timestamp_col, label_col)
    if suffix == ".parquet":
        try:
            df = pd.read_parquet(path)
        except ImportError:
            raise DataValidationError("reading Parquet needs pyarrow: pip install 'diffad[parquet]'") from None
        except Exception as exc:  # pyarrow's errors (ArrowInvalid, ...) on a damaged or foreign file
            raise fail(f"Parquet file {path}", "a readable Parquet file", f"{type(exc).__name__}: {str(exc)[:200]}", "Check the file.") from None
        return _frame_to_series(df, str(path), timestamp_col, label_col)
    if suffix in (".npz", ".npy", ".npy.gz"):
        values, labels = _read_numpy(path, suffix)
    else:
        raise fail("series file type", ".csv, .parquet, .npz or .npy", repr(path.suffix), "Convert the file.")
    return SeriesData(values, None, tuple(f"ch{i}" for i in range(values.shape[1])), labels)


def _read_numpy(path: Path, suffix: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(values (n, K) float64, labels or None) from an NPZ or NPY file, with diffad's errors only."""
    try:
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                keys = list(z.files)
                vkey = next((k for k in ("values", "X", "data") if k in keys), keys[0] if len(keys) == 1 else None)
                if vkey is None:
                    raise fail(f"NPZ file {path}", "an array named 'values', 'X' or 'data'", f"arrays {keys}", "Rename the array.")
                lkey = next((k for k in ("labels", "label", "y") if k in keys), None)
                raw, raw_labels = z[vkey], (z[lkey] if lkey else None)
        else:
            opener = gzip.open if suffix.endswith(".gz") else open
            with opener(path, "rb") as fh:
                raw, raw_labels = np.load(fh, allow_pickle=False), None
    except DataValidationError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise fail(f"file {path}", f"a readable {suffix} file of numbers", f"{type(exc).__name__}: {str(exc)[:200]}",
                   "Check the file (object arrays, which need pickle, are not read).") from None
    if raw.dtype.kind not in "biuf":
        raise fail(f"values in {path}", "numbers (int, float or bool)", f"dtype {raw.dtype}", "Save the values as numbers.")
    values = np.asarray(raw, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2 or values.size == 0:
        raise fail(f"values in {path}", "a non-empty 2-D array (time points x channels)", f"shape {raw.shape}", "Reshape it.")
    labels = check_labels(raw_labels, len(values), name=f"labels in {path}") if raw_labels is not None else None
    return values, labels


_DELIMITERS = ",;\t|"


def read_csv_table(path: str | Path) -> pd.DataFrame:
    """A CSV file as a DataFrame, with its delimiter found from the first lines (``,`` ``;`` tab or
    ``|``), and diffad's errors for files that are empty, header-only or not text."""
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as fh:
            head = fh.read(64 * 1024)
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise fail(f"CSV file {path}", "a text file (UTF-8)", f"{type(exc).__name__}: {str(exc)[:200]}", "Check that it is a CSV file.") from None
    lines = [ln for ln in head.splitlines() if ln.strip()]
    if not lines:
        raise fail(f"CSV file {path}", "a header row and data rows", "an empty file", "Check the file.")
    try:
        sep = csv.Sniffer().sniff("\n".join(lines[:50]), delimiters=_DELIMITERS).delimiter
    except csv.Error:
        sep = ","
    try:
        df = pd.read_csv(path, sep=sep)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError, ValueError, OSError, EOFError) as exc:
        raise fail(f"CSV file {path}", "a readable CSV with a header row", f"a parse error ({str(exc)[:200]})", "Check the file.") from None
    if len(df) == 0:
        raise fail(f"CSV file {path}", "data rows below the header", f"only a header ({list(map(str, df.columns))[:10]})", "Check the file.")
    return df


# ------------------------------------------------------------------------------------------ datasets
def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """``data_dir`` if given, else ``$DIFFAD_DATA``; an error (saying how to set it) otherwise."""
    if data_dir is None:
        env = os.environ.get("DIFFAD_DATA")
        if not env:
            raise DataValidationError(
                "data directory: expected the data_dir argument or the DIFFAD_DATA environment variable, got neither. "
                "Set DIFFAD_DATA to the folder that holds SMD/, SMAP_MSL/, NAB/ ... (or pass --data-dir)."
            )
        data_dir = env
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        raise fail("data directory", "an existing folder", repr(str(path)), "Check DIFFAD_DATA or --data-dir.")
    return path


def _segments_to_labels(n: int, segments: list[list[int]]) -> np.ndarray:
    y = np.zeros(n, dtype=np.int8)
    for s, e in segments:
        y[int(s) : int(e) + 1] = 1  # inclusive end, as telemanom and OmniAnomaly mark them
    return y


def _find_npy(folder: Path, stem: str) -> Path | None:
    for suffix in (".npy", ".npy.gz"):
        p = folder / f"{stem}{suffix}"
        if p.is_file():
            return p
    return None


def _load_npy(path: Path) -> np.ndarray:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        return np.load(fh, allow_pickle=False)


class Collection:
    """A benchmark collection: where it may live, how to list and read its entities."""

    name: str = ""
    folders: tuple[str, ...] = ()
    source: str = ""
    kind: str = "series"
    whole: tuple[str, ...] = ()  # entity names that stand for a concatenation (SMAP, MSL)
    needs_files: bool = True  # False for generated collections (no data directory needed)

    def root(self, data_dir: Path) -> Path | None:
        for f in self.folders:
            if (data_dir / f).is_dir():
                return data_dir / f
        return None

    def missing(self, data_dir: Path, detail: str) -> DataValidationError:
        return DataValidationError(
            f"{self.name}: expected {detail} under {data_dir} (one of the folders {list(self.folders)}), not found. "
            f"Get the data from {self.source} and put it there, or point DIFFAD_DATA elsewhere."
        )

    def entities(self, data_dir: Path) -> list[str]:
        raise NotImplementedError

    def load(self, data_dir: Path, entity: str) -> Dataset:
        raise NotImplementedError


class _PerEntityFolders(Collection):
    """``train/<e>.<ext>``, ``test/<e>.<ext>``, ``test_label/<e>.<ext>`` (SMD's original layout, GCP)."""

    exts = (".txt", ".csv")

    def _files(self, root: Path, sub: str) -> dict[str, Path]:
        d = root / sub
        return {p.stem: p for p in sorted(d.glob("*")) if p.suffix in self.exts} if d.is_dir() else {}

    def entities(self, data_dir: Path) -> list[str]:
        root = self.root(data_dir)
        if root is None:
            return []
        return sorted(set(self._files(root, "train")) & set(self._files(root, "test")), key=_natural)

    @staticmethod
    def _read_matrix(path: Path) -> np.ndarray:
        with open(path) as fh:
            first = fh.readline()
        header = any(ch.isalpha() and ch not in "eE" for ch in first)
        return np.loadtxt(path, delimiter=",", skiprows=1 if header else 0, dtype=np.float64, ndmin=2)

    def load(self, data_dir: Path, entity: str) -> Dataset:
        root = self.root(data_dir)
        if root is None:
            raise self.missing(data_dir, f"train/{entity}.txt")
        tr, te, lab = (self._files(root, s).get(entity) for s in ("train", "test", "test_label"))
        if tr is None or te is None or lab is None:
            raise self.missing(data_dir, f"train/, test/ and test_label/ files for {entity!r} in {root}")
        y = self._read_matrix(lab)[:, -1].astype(np.int8)
        train, test = self._read_matrix(tr), self._read_matrix(te)
        return Dataset(f"{self.name}/{entity}", train, test, y, tuple(f"ch{i}" for i in range(train.shape[1])))


def _natural(s: str) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


class SMD(_PerEntityFolders):
    name = "SMD"
    folders = ("SMD", "ServerMachineDataset")
    source = "https://github.com/NetManAIOps/OmniAnomaly (folder ServerMachineDataset)"

    def entities(self, data_dir: Path) -> list[str]:
        root = self.root(data_dir)
        if root is None:
            return []
        npz = {p.stem for p in (root / "npz").glob("machine-*.npz")} if (root / "npz").is_dir() else set()
        return sorted(npz | set(super().entities(data_dir)), key=_natural)

    def load(self, data_dir: Path, entity: str) -> Dataset:
        root = self.root(data_dir)
        if root is None:
            raise self.missing(data_dir, f"npz/{entity}.npz or train/{entity}.txt")
        npz = root / "npz" / f"{entity}.npz"
        if npz.is_file():
            with np.load(npz, allow_pickle=False) as z:
                train = np.ascontiguousarray(z["train"], dtype=np.float64)
                test = np.ascontiguousarray(z["test"], dtype=np.float64)
                y = np.asarray(z["test_label"]).astype(np.int8).ravel()
            ds = Dataset(f"SMD/{entity}", train, test, y, tuple(f"ch{i}" for i in range(train.shape[1])))
        elif (root / "train" / f"{entity}.txt").is_file():
            ds = super().load(data_dir, entity)
        else:
            raise self.missing(data_dir, f"npz/{entity}.npz or train/{entity}.txt + test/{entity}.txt + test_label/{entity}.txt")
        interp = root / "interpretation_label" / f"{entity}.txt"
        if interp.is_file():
            ds.meta["interpretation"] = _read_interpretation(interp)
        return ds


def _read_interpretation(path: Path) -> list[tuple[int, int, tuple[int, ...]]]:
    """``start-end:d1,d2`` lines -> (start, end, 0-based channels)."""
    out = []
    for line in path.read_text().split():
        span, dims = line.split(":")
        s, e = span.split("-")
        out.append((int(s), int(e), tuple(int(d) - 1 for d in dims.split(",") if d)))
    return out


class GCP(_PerEntityFolders):
    name = "GCP"
    folders = ("GCP",)
    source = "the ImDiffusion authors (no public copy); layout: GCP/train/<service>.csv, GCP/test/<service>.csv, GCP/test_label/<service>.csv"


class Telemanom(Collection):
    """NASA SMAP or MSL: per-channel entities and the concatenated OmniAnomaly convention."""

    folders = ("SMAP_MSL", "telemanom", "SMAP", "MSL")
    source = "https://github.com/khundman/telemanom (labeled_anomalies.csv and data.zip with train/ and test/)"
    dropped = ("P-2", "T-10")  # the OmniAnomaly / ImDiffusion concatenation leaves these out

    def __init__(self, spacecraft: str):
        self.name = spacecraft
        self.whole = (spacecraft,)

    def root(self, data_dir: Path) -> Path | None:
        for f in self.folders:
            for cand in (data_dir / f, data_dir / f / "data"):
                if (cand / "labeled_anomalies.csv").is_file():
                    return cand
        return None

    def _table(self, data_dir: Path) -> tuple[Path, pd.DataFrame]:
        root = self.root(data_dir)
        if root is None:
            raise self.missing(data_dir, "labeled_anomalies.csv with train/ and test/")
        df = pd.read_csv(root / "labeled_anomalies.csv")
        return root, df[df["spacecraft"] == self.name]

    def entities(self, data_dir: Path) -> list[str]:
        if self.root(data_dir) is None:
            return []
        root, df = self._table(data_dir)
        chans = [c for c in dict.fromkeys(df["chan_id"]) if _find_npy(root / "test", c)]
        return [self.name, *chans]

    def _channel(self, root: Path, df: pd.DataFrame, chan: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = df[df["chan_id"] == chan]
        tr, te = _find_npy(root / "train", chan), _find_npy(root / "test", chan)
        if rows.empty or tr is None or te is None:
            raise self.missing(root.parent, f"train/{chan}.npy, test/{chan}.npy and a {self.name} row for {chan} in labeled_anomalies.csv")
        test = _load_npy(te).astype(np.float64)
        segs = [s for seq in rows["anomaly_sequences"] for s in ast.literal_eval(seq)]
        return _load_npy(tr).astype(np.float64), test, _segments_to_labels(len(test), segs)

    def load(self, data_dir: Path, entity: str) -> Dataset:
        root, df = self._table(data_dir)
        if entity == self.name:
            chans = [c for c in dict.fromkeys(df["chan_id"]) if c not in self.dropped]
            parts = [self._channel(root, df, c) for c in chans]
            train = np.concatenate([p[0] for p in parts])
            test = np.concatenate([p[1] for p in parts])
            y = np.concatenate([p[2] for p in parts])
            meta = {"channels_concatenated": chans, "convention": "OmniAnomaly: csv order, P-2 and T-10 dropped"}
            name = self.name
        else:
            train, test, y = self._channel(root, df, entity)
            meta, name = {}, f"{self.name}/{entity}"
        cols = ("value",) + tuple(f"cmd{i}" for i in range(1, train.shape[1]))
        return Dataset(name, train, test, y, cols, meta=meta)


class NAB(Collection):
    """Numenta Anomaly Benchmark. Streaming: ``test`` is the whole series, ``train`` its first 15%
    (NAB's probationary period), so a detector is fitted on that prefix and scored on everything."""

    name = "NAB"
    folders = ("NAB",)
    source = "https://github.com/numenta/NAB (data/ and labels/)"
    probation = 0.15

    def _files(self, data_dir: Path) -> dict[str, Path]:
        root = self.root(data_dir)
        if root is None or not (root / "data").is_dir():
            return {}
        return {f"{p.parent.name}/{p.stem}": p for p in sorted((root / "data").glob("*/*.csv"))}

    def entities(self, data_dir: Path) -> list[str]:
        return list(self._files(data_dir))

    def load(self, data_dir: Path, entity: str) -> Dataset:
        files = self._files(data_dir)
        key = entity if entity in files else next((k for k in files if k.split("/")[1] == entity), None)
        if key is None:
            raise self.missing(data_dir, f"data/<category>/{entity}.csv")
        labels_file = self.root(data_dir) / "labels" / "combined_windows.json"
        if not labels_file.is_file():
            raise self.missing(data_dir, "labels/combined_windows.json")
        df = pd.read_csv(files[key])
        ts = pd.to_datetime(df["timestamp"])
        y = np.zeros(len(df), dtype=np.int8)
        for start, end in json.loads(labels_file.read_text()).get(f"{key}.csv", []):
            y[((ts >= pd.Timestamp(start)) & (ts <= pd.Timestamp(end))).to_numpy()] = 1
        values = df[["value"]].to_numpy(np.float64)
        cut = int(len(values) * self.probation)
        return Dataset(f"NAB/{key}", values[:cut], values, y, ("value",), meta={"index": pd.DatetimeIndex(ts), "train_end": cut})


class UCR(Collection):
    """UCR / KDD-Cup 2021 archive: ``<id>_UCR_Anomaly_<name>_<train_end>_<begin>_<end>.txt``;
    train is ``[0, train_end)``, test the rest; the anomaly positions are 1-based and inclusive."""

    name = "UCR"
    folders = ("UCR",)
    source = "the UCR Time Series Anomaly Archive (Keogh et al., KDD Cup 2021)"
    pattern = re.compile(r"^(\d+)_UCR_Anomaly_(.+)_(\d+)_(\d+)_(\d+)$")

    def _files(self, data_dir: Path) -> dict[str, Path]:
        root = self.root(data_dir)
        if root is None:
            return {}
        return {p.stem: p for p in sorted(root.rglob("*.txt"), key=lambda p: _natural(p.name)) if self.pattern.match(p.stem)}

    def entities(self, data_dir: Path) -> list[str]:
        return list(self._files(data_dir))

    def load(self, data_dir: Path, entity: str) -> Dataset:
        files = self._files(data_dir)
        key = entity if entity in files else next((k for k in files if k.split("_")[0] == entity), None)
        if key is None:
            raise self.missing(data_dir, f"{entity}*.txt named <id>_UCR_Anomaly_<name>_<train_end>_<begin>_<end>.txt")
        _, _, train_end, begin, end = self.pattern.match(key).groups()
        values = np.loadtxt(files[key], dtype=np.float64).ravel()[:, None]
        y = np.zeros(len(values), dtype=np.int8)
        y[int(begin) - 1 : int(end)] = 1
        t = int(train_end)
        return Dataset(f"UCR/{key}", values[:t], values[t:], y[t:], ("value",), meta={"train_end": t})


class TSBAD(Collection):
    """TSB-AD CSVs (features then ``Label``). As in TSB-AD, ``train`` is the prefix
    ``[0, train_end)`` named in the file and ``test`` is the whole series."""

    name = "TSB-AD"
    folders = ("TSB-AD",)
    source = "https://github.com/TheDatumOrg/TSB-AD (Datasets/TSB-AD-U, TSB-AD-M)"
    pattern = re.compile(r"_tr_(\d+)_1st_(\d+)$|_(\d+)_(\d+)$")

    def _files(self, data_dir: Path) -> dict[str, Path]:
        root = self.root(data_dir)
        if root is None:
            return {}
        return {p.stem: p for sub in ("TSB-AD-U", "TSB-AD-M") for p in sorted((root / sub).glob("*.csv"))}

    def entities(self, data_dir: Path) -> list[str]:
        return list(self._files(data_dir))

    def load(self, data_dir: Path, entity: str) -> Dataset:
        files = self._files(data_dir)
        if entity not in files:
            raise self.missing(data_dir, f"TSB-AD-U/{entity}.csv or TSB-AD-M/{entity}.csv")
        m = self.pattern.search(entity)
        if m is None:
            raise fail(f"TSB-AD file name {entity!r}", "..._tr_<train_end>_1st_<first_anomaly>", "no train_end in the name", "Rename the file as TSB-AD does.")
        train_end = int(m.group(1) or m.group(3))
        df = pd.read_csv(files[entity])
        y = df.pop("Label").to_numpy().astype(np.int8)
        values = df.to_numpy(np.float64)
        return Dataset(f"TSB-AD/{entity}", values[:train_end], values, y, tuple(map(str, df.columns)), meta={"train_end": train_end})


class PSM(Collection):
    name = "PSM"
    folders = ("PSM",)
    source = "https://github.com/eBay/RANSynCoders (data/train.csv, test.csv, test_label.csv)"

    def entities(self, data_dir: Path) -> list[str]:
        root = self.root(data_dir)
        ok = root is not None and all((root / f).is_file() for f in ("train.csv", "test.csv", "test_label.csv"))
        return ["PSM"] if ok else []

    def load(self, data_dir: Path, entity: str) -> Dataset:
        if not self.entities(data_dir):
            raise self.missing(data_dir, "PSM/train.csv, PSM/test.csv and PSM/test_label.csv")
        root = self.root(data_dir)
        train = read_series(root / "train.csv")
        test = read_series(root / "test.csv")
        y = _label_vector(pd.read_csv(root / "test_label.csv")["label"], "PSM/test_label.csv")
        return Dataset("PSM", train.values, test.values, y, train.channels, meta={"note": "PSM's train.csv has missing values (NaN, kept)"})


class SWaT(Collection):
    """SWaT (iTrust, on request). Expected: the original sheets exported to CSV,
    ``SWaT_Dataset_Normal_v1.csv`` (train) and ``SWaT_Dataset_Attack_v0.csv`` (test, column
    ``Normal/Attack``), or ``train.csv`` / ``test.csv`` with a ``label`` column."""

    name = "SWaT"
    folders = ("SWaT",)
    source = "iTrust, SUTD (https://itrust.sutd.edu.sg, on request)"
    pairs = (("SWaT_Dataset_Normal_v1.csv", "SWaT_Dataset_Attack_v0.csv"), ("train.csv", "test.csv"))

    def _pair(self, data_dir: Path) -> tuple[Path, Path] | None:
        root = self.root(data_dir)
        if root is None:
            return None
        return next(((root / a, root / b) for a, b in self.pairs if (root / a).is_file() and (root / b).is_file()), None)

    def entities(self, data_dir: Path) -> list[str]:
        return ["SWaT"] if self._pair(data_dir) else []

    def load(self, data_dir: Path, entity: str) -> Dataset:
        pair = self._pair(data_dir)
        if pair is None:
            raise self.missing(data_dir, "SWaT_Dataset_Normal_v1.csv + SWaT_Dataset_Attack_v0.csv (or train.csv + test.csv)")
        train, test = read_series(pair[0]), read_series(pair[1])
        if test.labels is None:
            raise fail(f"{pair[1]}", "a label column (Normal/Attack or label)", "none", "Add the label column.")
        return Dataset("SWaT", train.values, test.values, test.labels, test.channels)


class ADBench(Collection):
    name = "ADBench"
    folders = ("ADBench",)
    source = "https://github.com/Minqi824/ADBench (adbench/datasets/Classical/*.npz)"
    kind = "tabular"

    def _files(self, data_dir: Path) -> dict[str, Path]:
        root = self.root(data_dir)
        if root is None:
            return {}
        return {p.stem: p for p in sorted(root.rglob("*.npz"), key=lambda p: _natural(p.name))}

    def entities(self, data_dir: Path) -> list[str]:
        return list(self._files(data_dir))

    def load(self, data_dir: Path, entity: str) -> Dataset:
        files = self._files(data_dir)
        key = entity if entity in files else next((k for k in files if k.split("_", 1)[-1].lower() == entity.lower()), None)
        if key is None:
            raise self.missing(data_dir, f"Classical/{entity}.npz")
        with np.load(files[key], allow_pickle=False) as z:
            X = np.asarray(z["X"], dtype=np.float64)
            y = np.asarray(z["y"]).astype(np.int8)
        return Dataset(f"ADBench/{key}", X, X, y, tuple(f"f{i}" for i in range(X.shape[1])), kind="tabular")


class Synthetic(Collection):
    """Built-in generated series (no files): ``SYNTH/<seed>`` is ``make_series(seed=<seed>)`` with 4
    channels, 2,000 training and 2,000 test points. For demos, tests and benchmark smoke runs."""

    name = "SYNTH"
    source = "diffad.data.synthetic (generated, nothing to download)"
    needs_files = False

    def root(self, data_dir: Path | None) -> Path | None:
        return None

    def entities(self, data_dir: Path | None) -> list[str]:
        return ["0", "1", "2"]

    def load(self, data_dir: Path | None, entity: str) -> Dataset:
        from .synthetic import make_series

        if not entity.isdigit():
            raise fail("SYNTH entity", "a seed, e.g. SYNTH/0", repr(entity), "Use SYNTH/<integer>.")
        s = make_series(n_train=2000, n_test=2000, n_channels=4, n_anomalies=10, seed=int(entity))
        return Dataset(f"SYNTH/{entity}", s.train, s.test, s.labels, tuple(f"ch{i}" for i in range(4)),
                       meta={"segments": [(g.start, g.end, g.kind) for g in s.segments],
                             "interpretation": [(g.start, g.end - 1, tuple(g.channels)) for g in s.segments if g.channels]})


class SyntheticTabular(Synthetic):
    """Built-in generated tabular sets (no files): ``SYNTH-TAB/<seed>`` is ``make_tabular(1000, 8,
    kind=...)`` with 5% anomalies, the kind cycling over local, global, dependency and clustered."""

    name = "SYNTH-TAB"
    source = "diffad.data.synthetic.make_tabular (generated, nothing to download)"
    kind = "tabular"

    def load(self, data_dir: Path | None, entity: str) -> Dataset:
        from .synthetic import TABULAR_ANOMALY_KINDS, make_tabular

        if not entity.isdigit():
            raise fail("SYNTH-TAB entity", "a seed, e.g. SYNTH-TAB/0", repr(entity), "Use SYNTH-TAB/<integer>.")
        kind = TABULAR_ANOMALY_KINDS[int(entity) % len(TABULAR_ANOMALY_KINDS)]
        X, y = make_tabular(1000, 8, kind=kind, contamination=0.05, seed=int(entity))
        return Dataset(f"SYNTH-TAB/{entity}", X, X, y.astype(np.int8), tuple(f"f{i}" for i in range(8)), kind="tabular", meta={"kind": kind})


COLLECTIONS: dict[str, Collection] = {
    c.name: c
    for c in (SMD(), Telemanom("SMAP"), Telemanom("MSL"), NAB(), UCR(), TSBAD(), PSM(), SWaT(), GCP(), ADBench(), Synthetic(), SyntheticTabular())
}


def _split_name(name: str) -> tuple[Collection, str | None]:
    head, _, rest = name.partition("/")
    coll = COLLECTIONS.get(head)
    if coll is None:
        raise fail("dataset name", f"<collection>[/<entity>] with a collection in {list(COLLECTIONS)}", repr(name), "Run `diffad data list` to see what is available.")
    return coll, rest or None


def _root_for(coll: Collection, data_dir: str | Path | None) -> Path | None:
    return resolve_data_dir(data_dir) if coll.needs_files else None


def list_entities(name: str, data_dir: str | Path | None = None) -> list[str]:
    """Full names of the entities of a collection found under the data directory."""
    coll, entity = _split_name(name)
    root = _root_for(coll, data_dir)
    found = coll.entities(root)
    if entity is not None:
        return [f"{coll.name}/{entity}"]
    if coll.whole:
        return list(coll.whole)
    return [e if e == coll.name else f"{coll.name}/{e}" for e in found]


def load_dataset(name: str, data_dir: str | Path | None = None) -> Dataset:
    """Load one entity, e.g. ``"SMD/machine-1-2"``, ``"SMAP"`` (concatenated), ``"SMAP/A-1"``,
    ``"NAB/realKnownCause/nyc_taxi"``, ``"UCR/135"``, ``"ADBench/6_cardio"``, ``"PSM"``.

    A collection with several entities (``"SMD"``, ``"NAB"``...) is an error here: use
    :func:`load_datasets` for those.
    """
    coll, entity = _split_name(name)
    root = _root_for(coll, data_dir)
    if entity is None:
        if coll.whole or coll.name in ("PSM", "SWaT"):
            entity = coll.name
        else:
            found = coll.entities(root)
            raise fail(
                f"dataset name {name!r}",
                "one entity",
                f"a collection of {len(found)} entities",
                f"Use load_datasets({name!r}) for all of them, or one of {[f'{coll.name}/{e}' for e in found[:3]]}...",
            )
    return coll.load(root, entity)


def load_datasets(name: str, data_dir: str | Path | None = None) -> list[Dataset]:
    """Load every entity a name stands for: ``"SMD"`` -> every machine found; an entity -> [it]."""
    coll, entity = _split_name(name)
    root = _root_for(coll, data_dir)
    if entity is not None or coll.whole or coll.name in ("PSM", "SWaT"):
        return [load_dataset(name, root)]
    found = coll.entities(root)
    if not found:
        raise coll.missing(root, f"{coll.name} files")
    return [coll.load(root, e) for e in found]


# -------------------------------------------------------------------------------------------- images
IMAGE_FOLDERS = ("MVTec3D_tire_subset", "mvtec_3d/tire", "MVTec3D/tire", "mvtec_3d_anomaly_detection/tire")


def _read_png(path: Path, size: tuple[int, int] | None, mask: bool) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("L" if mask else "RGB")
        if size is not None:
            im = im.resize((size[1], size[0]), Image.NEAREST if mask else Image.BILINEAR)
        return np.asarray(im, dtype=np.uint8)


def load_images(name: str = "MVTec3D/tire", data_dir: str | Path | None = None, size: tuple[int, int] | None = None) -> ImageSet:
    """Read an MVTec-style image set: ``train/good/rgb/*.png`` and ``test/<kind>/rgb|gt/*.png`` (the
    MVTec 3D-AD layout). ``size=(H, W)`` resizes (bilinear for images, nearest for masks).

    ``SYNTH-IMG/<seed>`` is the built-in generated set :func:`diffad.data.synthetic.make_defect_images`
    (drawn at ``size``, default 32 x 32; nothing to read); ``SYNTH-IMG-FAINT/<seed>`` the same images
    with the defects blended in at ``FAINT_CONTRAST``."""
    family, _, seed = name.partition("/")
    if family in ("SYNTH-IMG", "SYNTH-IMG-FAINT"):
        from .synthetic import FAINT_CONTRAST, make_defect_images

        if not seed.isdigit():
            raise fail(f"{family} set", f"a seed, e.g. {family}/0", repr(name), f"Use {family}/<integer>.")
        if size is not None and size[0] != size[1]:
            raise fail(f"{family} size", "a square size", repr(size), "Use equal height and width.")
        images = make_defect_images(size=size[0] if size else 32, seed=int(seed), contrast=FAINT_CONTRAST if family == "SYNTH-IMG-FAINT" else 1.0)
        return replace(images, name=name)
    if name != "MVTec3D/tire":
        raise fail("image set", "'MVTec3D/tire', 'SYNTH-IMG/<seed>' or 'SYNTH-IMG-FAINT/<seed>'", repr(name), "Use one of the registered image sets.")
    root_dir = resolve_data_dir(data_dir)
    root = next((root_dir / f for f in IMAGE_FOLDERS if (root_dir / f / "train" / "good" / "rgb").is_dir()), None)
    if root is None:
        raise DataValidationError(
            f"MVTec3D/tire: expected train/good/rgb/*.png under one of {list(IMAGE_FOLDERS)} in {root_dir}, not found. "
            "Get MVTec 3D-AD (CC BY-NC-SA 4.0) from https://www.mvtec.com/company/research/datasets/mvtec-3d-ad."
        )
    train = np.stack([_read_png(p, size, False) for p in sorted((root / "train" / "good" / "rgb").glob("*.png"))])
    imgs, masks, kinds = [], [], []
    for kind_dir in sorted(p for p in (root / "test").iterdir() if p.is_dir()):
        for p in sorted((kind_dir / "rgb").glob("*.png")):
            imgs.append(_read_png(p, size, False))
            gt = kind_dir / "gt" / p.name
            masks.append(_read_png(gt, size, True) if gt.is_file() else np.zeros(imgs[-1].shape[:2], np.uint8))
            kinds.append(kind_dir.name)
    return ImageSet(name, train.transpose(0, 3, 1, 2), np.stack(imgs).transpose(0, 3, 1, 2), np.stack(masks), tuple(kinds))
