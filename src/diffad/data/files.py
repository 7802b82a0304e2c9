"""Reading one series from a user's file: CSV (any of , ; tab |), Parquet, NPZ, NPY.

A timestamp column becomes a ``DatetimeIndex`` (strictly increasing), a label column becomes 0/1
labels, and every failure is one of diffad's errors, never another library's exception.
"""

from __future__ import annotations

import csv
import gzip
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from ..exceptions import DataValidationError
from ..validation import check_index, check_labels, fail, param_hint
from .records import SeriesData

__all__ = ["read_series", "read_frame", "read_column", "read_csv_table", "TIMESTAMP_NAMES", "LABEL_NAMES"]

TIMESTAMP_NAMES = ("timestamp", "time", "date", "datetime", "ts", "timestamp_(min)")
LABEL_NAMES = ("label", "labels", "is_anomaly", "anomaly", "attack", "normal/attack")


def _label_vector(col: pd.Series, where: str) -> np.ndarray:
    if not pd.api.types.is_numeric_dtype(col):
        text = col.astype(str).str.strip().str.lower().str.replace(" ", "")
        known = {"normal": 0, "attack": 1, "anomaly": 1, "0": 0, "1": 1, "true": 1, "false": 0}
        bad = sorted(set(text) - set(known))
        if bad:
            raise fail(
                f"label column of {where}",
                "0/1 (or Normal/Attack)",
                f"values {bad[:5]}",
                "Encode labels as 0 and 1.",
            )
        return text.map(known).to_numpy(np.int8)
    vals = col.to_numpy(dtype=np.float64)
    if np.isnan(vals).any() or not np.isin(np.unique(vals), (0.0, 1.0)).all():
        raise fail(
            f"label column of {where}",
            "0/1 values",
            f"values {np.unique(vals)[:5].tolist()}",
            "Encode labels as 0 and 1.",
        )
    return vals.astype(np.int8)


def _frame_to_series(
    df: pd.DataFrame, where: str, timestamp_col: str | None, label_col: str | None
) -> SeriesData:
    lower = {str(c).strip().lower(): c for c in df.columns}
    for arg, kind in ((timestamp_col, "timestamp"), (label_col, "label")):
        if arg is not None and arg not in df.columns:
            raise fail(
                f"{kind} column of {where}",
                f"one of the columns {list(map(str, df.columns))[:20]}",
                repr(arg),
                "Check the column name.",
            )
    ts = (
        timestamp_col
        if timestamp_col is not None
        else next((lower[n] for n in TIMESTAMP_NAMES if n in lower), None)
    )
    lab = label_col if label_col is not None else next((lower[n] for n in LABEL_NAMES if n in lower), None)
    index = None
    if ts is not None:
        raw = df[ts]
        if pd.api.types.is_numeric_dtype(raw) and timestamp_col is None:
            index = (
                None  # integer step counters (e.g. PSM's timestamp_(min)) are dropped, not parsed as dates
            )
        else:
            try:
                index = pd.DatetimeIndex(pd.to_datetime(raw), name=str(ts))
            except (ValueError, TypeError, OverflowError):
                raise fail(
                    f"timestamp column {ts!r} of {where}",
                    "parseable dates",
                    f"values like {raw.iloc[:2].tolist()}",
                    f"Fix the column or name another with {param_hint('timestamp_col', 'NAME')}.",
                ) from None
            check_index(index, name=where)
    labels = _label_vector(df[lab], where) if lab is not None else None
    data = df.drop(columns=[c for c in (ts, lab) if c is not None])
    bad = [
        str(c)
        for c in data.columns
        if not pd.api.types.is_numeric_dtype(data[c]) or pd.api.types.is_complex_dtype(data[c])
    ]
    if bad:
        raise fail(
            f"columns of {where}",
            "numeric channels (plus an optional timestamp and label column)",
            f"non-numeric column(s) {bad[:10]}",
            f"Drop or encode them; name the timestamp column with {param_hint('timestamp_col', 'NAME')}.",
        )
    if data.shape[1] == 0:
        raise fail(where, "at least one numeric channel", "none", "Check the file.")
    return SeriesData(data.to_numpy(np.float64), index, tuple(str(c).strip() for c in data.columns), labels)


def read_series(
    path: str | Path, *, timestamp_col: str | None = None, label_col: str | None = None
) -> SeriesData:
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
            raise DataValidationError(
                "reading Parquet needs pyarrow: pip install 'diffad[parquet]'"
            ) from None
        except Exception as exc:  # pyarrow's errors (ArrowInvalid, ...) on a damaged or foreign file
            raise fail(
                f"Parquet file {path}",
                "a readable Parquet file",
                f"{type(exc).__name__}: {str(exc)[:200]}",
                "Check the file.",
            ) from None
        return _frame_to_series(df, str(path), timestamp_col, label_col)
    if suffix in (".npz", ".npy", ".npy.gz"):
        values, labels = _read_numpy(path, suffix)
    else:
        raise fail("series file type", ".csv, .parquet, .npz or .npy", repr(path.suffix), "Convert the file.")
    return SeriesData(values, None, tuple(f"ch{i}" for i in range(values.shape[1])), labels)


def read_frame(
    path: str | Path,
    labels: str | Path | None = None,
    *,
    timestamp_col: str | None = None,
    label_col: str | None = None,
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """A series file as ``(DataFrame, labels or None)``: the channels as named columns, the timestamps
    (if any) as the index; the labels from a separate ``labels`` file (.csv or .npy, one per row) when
    given, else from the file's label column."""
    series = read_series(path, timestamp_col=timestamp_col, label_col=label_col)
    frame = frame_of(series)
    y = read_labels(labels, len(frame)) if labels is not None else series.labels
    return frame, y


def read_labels(path: str | Path, n: int) -> np.ndarray:
    """True 0/1 labels from a separate file (.csv with a label column, or .npy), one per row of ``n``."""
    return check_labels(read_column(Path(path), LABEL_NAMES, None, "labels"), n, name=f"labels in {path}")


def read_column(path: Path, preferred: tuple[str, ...], column: str | None, what: str) -> np.ndarray:
    """One numeric column from a .npy file or a CSV (named by ``column``, else a preferred name, else the
    only column); ``what`` names it in messages (and its ``--WHAT-col`` option)."""
    if not path.is_file():
        raise fail(f"{what} file", "an existing .csv or .npy file", repr(str(path)), "Check the path.")
    if path.suffix == ".npy":
        values, _ = _read_numpy(path, ".npy")  # (n, K) float64, diffad's errors for damaged files
        if values.shape[1] != 1:
            raise fail(
                f"{what} in {path}", "a 1-D array", f"shape {values.shape}", "Save one value per time point."
            )
        return values[:, 0]
    df = read_csv_table(path)
    lower = {c.lower(): c for c in df.columns}
    if column is not None:
        if column not in df.columns:
            raise fail(f"{what} column", f"one of {list(df.columns)}", repr(column), "Check the column name.")
        name = column
    elif len(df.columns) == 1:
        name = df.columns[0]
    else:
        found = next((lower[c] for c in preferred if c in lower), None)
        if found is None:
            raise fail(
                f"{what} column in {path}",
                f"a column named one of {list(preferred)} (or --{what}-col)",
                f"columns {list(df.columns)}",
                f"Pass --{what}-col NAME.",
            )
        name = found
    values = df[name]
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_complex_dtype(values):
        raise fail(
            f"{what} column {name!r} of {path}",
            "numbers",
            f"values like {values.head(3).tolist()}",
            "Check the file and its delimiter.",
        )
    return values.to_numpy()


def _read_numpy(path: Path, suffix: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(values (n, K) float64, labels or None) from an NPZ or NPY file, with diffad's errors only."""
    try:
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                keys = list(z.files)
                vkey = next(
                    (k for k in ("values", "X", "data") if k in keys), keys[0] if len(keys) == 1 else None
                )
                if vkey is None:
                    raise fail(
                        f"NPZ file {path}",
                        "an array named 'values', 'X' or 'data'",
                        f"arrays {keys}",
                        "Rename the array.",
                    )
                lkey = next((k for k in ("labels", "label", "y") if k in keys), None)
                raw, raw_labels = z[vkey], (z[lkey] if lkey else None)
        else:
            opener = gzip.open if suffix.endswith(".gz") else open
            with opener(path, "rb") as fh:
                raw, raw_labels = np.load(fh, allow_pickle=False), None
    except DataValidationError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise fail(
            f"file {path}",
            f"a readable {suffix} file of numbers",
            f"{type(exc).__name__}: {str(exc)[:200]}",
            "Check the file (object arrays, which need pickle, are not read).",
        ) from None
    if raw.dtype.kind not in "biuf":
        raise fail(
            f"values in {path}",
            "numbers (int, float or bool)",
            f"dtype {raw.dtype}",
            "Save the values as numbers.",
        )
    values = np.asarray(raw, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2 or values.size == 0:
        raise fail(
            f"values in {path}",
            "a non-empty 2-D array (time points x channels)",
            f"shape {raw.shape}",
            "Reshape it.",
        )
    labels = (
        check_labels(raw_labels, len(values), name=f"labels in {path}") if raw_labels is not None else None
    )
    return values, labels


_DELIMITERS = ",;\t|"


def _delimiter(lines: list[str]) -> str:
    """The delimiter of a CSV from its first non-empty lines (``,`` when none is recognised)."""
    try:
        return csv.Sniffer().sniff("\n".join(lines[:50]), delimiters=_DELIMITERS).delimiter
    except csv.Error:
        return ","


def csv_delimiter(path: str | Path) -> str:
    """The delimiter :func:`read_csv_table` would use for ``path``, from its first lines only (for
    readers that take the file in chunks or a column at a time)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as fh:
        lines = [ln for ln in (fh.readline() for _ in range(50)) if ln.strip()]
    return _delimiter(lines)


def frame_of(series: SeriesData) -> pd.DataFrame:
    """A read series as a DataFrame: the channels as named columns, the timestamps (if any) as the index."""
    return pd.DataFrame(series.values, columns=list(series.channels), index=series.index)


def read_csv_table(path: str | Path) -> pd.DataFrame:
    """A CSV file as a DataFrame, with its delimiter found from the first lines (``,`` ``;`` tab or
    ``|``), and diffad's errors for files that are empty, header-only or not text."""
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as fh:
            head = fh.read(64 * 1024)
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise fail(
            f"CSV file {path}",
            "a text file (UTF-8)",
            f"{type(exc).__name__}: {str(exc)[:200]}",
            "Check that it is a CSV file.",
        ) from None
    lines = [ln for ln in head.splitlines() if ln.strip()]
    if not lines:
        raise fail(f"CSV file {path}", "a header row and data rows", "an empty file", "Check the file.")
    sep = _delimiter(lines)
    try:
        df = pd.read_csv(path, sep=sep)
    except (
        pd.errors.ParserError,
        UnicodeDecodeError,
        pd.errors.EmptyDataError,
        ValueError,
        OSError,
        EOFError,
    ) as exc:
        raise fail(
            f"CSV file {path}",
            "a readable CSV with a header row",
            f"a parse error ({str(exc)[:200]})",
            "Check the file.",
        ) from None
    if len(df) == 0:
        raise fail(
            f"CSV file {path}",
            "data rows below the header",
            f"only a header ({list(map(str, df.columns))[:10]})",
            "Check the file.",
        )
    return df
