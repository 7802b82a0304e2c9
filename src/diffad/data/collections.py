"""The benchmark collections (SMD, SMAP/MSL, NAB, UCR, TSB-AD, PSM, SWaT, GCP, ADBench, generated sets):
where each keeps its files, which entities it has, and how one is read into a :class:`Dataset`.

Both the layouts of ``shared/data``-style mirrors (SMD as ``npz/``, SMAP/MSL as ``.npy.gz``) and the
original upstream layouts (SMD ``train/ test/ test_label/`` txt files, telemanom ``train/*.npy``,
PSM's three CSV files, ...) are read, so an original download needs no conversion.
"""

from __future__ import annotations

import ast
import gzip
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import DataValidationError
from ..validation import fail
from .files import _label_vector, read_series
from .records import Dataset
from .synthetic import TABULAR_ANOMALY_KINDS, make_series, make_tabular

__all__ = ["COLLECTIONS", "Collection", "resolve_data_dir"]


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
        raise fail(
            "data directory", "an existing folder", repr(str(path)), "Check DIFFAD_DATA or --data-dir."
        )
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
        return Dataset(
            f"{self.name}/{entity}", train, test, y, tuple(f"ch{i}" for i in range(train.shape[1]))
        )


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
            raise self.missing(
                data_dir,
                f"npz/{entity}.npz or train/{entity}.txt + test/{entity}.txt + test_label/{entity}.txt",
            )
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
    source = (
        "https://github.com/khundman/telemanom (labeled_anomalies.csv and data.zip with train/ and test/)"
    )
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
            raise self.missing(
                root.parent,
                f"train/{chan}.npy, test/{chan}.npy and a {self.name} row for {chan} in labeled_anomalies.csv",
            )
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
            meta = {
                "channels_concatenated": chans,
                "convention": "OmniAnomaly: csv order, P-2 and T-10 dropped",
            }
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
        root = self.root(data_dir)
        assert root is not None  # the entity's file was found under it
        labels_file = root / "labels" / "combined_windows.json"
        if not labels_file.is_file():
            raise self.missing(data_dir, "labels/combined_windows.json")
        df = pd.read_csv(files[key])
        ts = pd.to_datetime(df["timestamp"])
        y = np.zeros(len(df), dtype=np.int8)
        for start, end in json.loads(labels_file.read_text()).get(f"{key}.csv", []):
            y[((ts >= pd.Timestamp(start)) & (ts <= pd.Timestamp(end))).to_numpy()] = 1
        values = df[["value"]].to_numpy(np.float64)
        cut = int(len(values) * self.probation)
        return Dataset(
            f"NAB/{key}",
            values[:cut],
            values,
            y,
            ("value",),
            meta={"index": pd.DatetimeIndex(ts), "train_end": cut},
        )


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
        return {
            p.stem: p
            for p in sorted(root.rglob("*.txt"), key=lambda p: _natural(p.name))
            if self.pattern.match(p.stem)
        }

    def entities(self, data_dir: Path) -> list[str]:
        return list(self._files(data_dir))

    def load(self, data_dir: Path, entity: str) -> Dataset:
        files = self._files(data_dir)
        key = entity if entity in files else next((k for k in files if k.split("_")[0] == entity), None)
        if key is None:
            raise self.missing(
                data_dir, f"{entity}*.txt named <id>_UCR_Anomaly_<name>_<train_end>_<begin>_<end>.txt"
            )
        match = self.pattern.match(key)
        assert match is not None  # _files keeps only names that match
        _, _, train_end, begin, end = match.groups()
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
            raise fail(
                f"TSB-AD file name {entity!r}",
                "..._tr_<train_end>_1st_<first_anomaly>",
                "no train_end in the name",
                "Rename the file as TSB-AD does.",
            )
        train_end = int(m.group(1) or m.group(3))
        df = pd.read_csv(files[entity])
        y = df.pop("Label").to_numpy().astype(np.int8)
        values = df.to_numpy(np.float64)
        return Dataset(
            f"TSB-AD/{entity}",
            values[:train_end],
            values,
            y,
            tuple(map(str, df.columns)),
            meta={"train_end": train_end},
        )


class PSM(Collection):
    name = "PSM"
    folders = ("PSM",)
    source = "https://github.com/eBay/RANSynCoders (data/train.csv, test.csv, test_label.csv)"

    def entities(self, data_dir: Path) -> list[str]:
        root = self.root(data_dir)
        ok = root is not None and all(
            (root / f).is_file() for f in ("train.csv", "test.csv", "test_label.csv")
        )
        return ["PSM"] if ok else []

    def load(self, data_dir: Path, entity: str) -> Dataset:
        if not self.entities(data_dir):
            raise self.missing(data_dir, "PSM/train.csv, PSM/test.csv and PSM/test_label.csv")
        root = self.root(data_dir)
        assert root is not None  # entities() found the files
        train = read_series(root / "train.csv")
        test = read_series(root / "test.csv")
        y = _label_vector(pd.read_csv(root / "test_label.csv")["label"], "PSM/test_label.csv")
        return Dataset(
            "PSM",
            train.values,
            test.values,
            y,
            train.channels,
            meta={"note": "PSM's train.csv has missing values (NaN, kept)"},
        )


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
        return next(
            ((root / a, root / b) for a, b in self.pairs if (root / a).is_file() and (root / b).is_file()),
            None,
        )

    def entities(self, data_dir: Path) -> list[str]:
        return ["SWaT"] if self._pair(data_dir) else []

    def load(self, data_dir: Path, entity: str) -> Dataset:
        pair = self._pair(data_dir)
        if pair is None:
            raise self.missing(
                data_dir, "SWaT_Dataset_Normal_v1.csv + SWaT_Dataset_Attack_v0.csv (or train.csv + test.csv)"
            )
        train, test = read_series(pair[0]), read_series(pair[1])
        if test.labels is None:
            raise fail(
                f"{pair[1]}", "a label column (Normal/Attack or label)", "none", "Add the label column."
            )
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
        key = (
            entity
            if entity in files
            else next((k for k in files if k.split("_", 1)[-1].lower() == entity.lower()), None)
        )
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
        if not entity.isdigit():
            raise fail("SYNTH entity", "a seed, e.g. SYNTH/0", repr(entity), "Use SYNTH/<integer>.")
        s = make_series(n_train=2000, n_test=2000, n_channels=4, n_anomalies=10, seed=int(entity))
        return Dataset(
            f"SYNTH/{entity}",
            s.train,
            s.test,
            s.labels,
            tuple(f"ch{i}" for i in range(4)),
            meta={
                "segments": [(g.start, g.end, g.kind) for g in s.segments],
                "interpretation": [(g.start, g.end - 1, tuple(g.channels)) for g in s.segments if g.channels],
            },
        )


class SyntheticTabular(Synthetic):
    """Built-in generated tabular sets (no files): ``SYNTH-TAB/<seed>`` is ``make_tabular(1000, 8,
    kind=...)`` with 5% anomalies, the kind cycling over local, global, dependency and clustered."""

    name = "SYNTH-TAB"
    source = "diffad.data.synthetic.make_tabular (generated, nothing to download)"
    kind = "tabular"

    def load(self, data_dir: Path | None, entity: str) -> Dataset:
        if not entity.isdigit():
            raise fail(
                "SYNTH-TAB entity", "a seed, e.g. SYNTH-TAB/0", repr(entity), "Use SYNTH-TAB/<integer>."
            )
        kind = TABULAR_ANOMALY_KINDS[int(entity) % len(TABULAR_ANOMALY_KINDS)]
        X, y = make_tabular(1000, 8, kind=kind, contamination=0.05, seed=int(entity))
        return Dataset(
            f"SYNTH-TAB/{entity}",
            X,
            X,
            y.astype(np.int8),
            tuple(f"f{i}" for i in range(8)),
            kind="tabular",
            meta={"kind": kind},
        )


COLLECTIONS: dict[str, Collection] = {
    c.name: c
    for c in (
        SMD(),
        Telemanom("SMAP"),
        Telemanom("MSL"),
        NAB(),
        UCR(),
        TSBAD(),
        PSM(),
        SWaT(),
        GCP(),
        ADBench(),
        Synthetic(),
        SyntheticTabular(),
    )
}
