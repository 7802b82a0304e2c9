"""Command-line options that several commands share (typer ``Annotated`` types)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Preset = Annotated[
    str | None,
    typer.Option(
        help="ImDiffusion's settings: fast (CPU-friendly, the default) or paper (published settings, for a GPU)."
    ),
]
DetectorOpt = Annotated[
    str | None,
    typer.Option(
        "--detector",
        help="ImDiffusion (the default), PCA, KNN, IsolationForest, LOF, OCSVM, Random, SelfDistilledMAE, "
        "DTECategorical ... (`docs/choosing.md` says which for which data).",
        show_default=False,
    ),
]
Config = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help='TOML or JSON file of detector parameters (window = 50, threshold = "pot"), and optionally '
        "detector and preset; --set and the other options override it.",
        show_default=False,
    ),
]
Window = Annotated[
    int | None,
    typer.Option(
        min=1, help="Window length of a windowed detector (the same as --set window=N).", show_default=False
    ),
]
DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Folder holding SMD/, SMAP_MSL/, NAB/ ... (default: $DIFFAD_DATA).",
        show_default=False,
    ),
]
Device = Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 ... (default: cuda when available).")]
Seed = Annotated[int, typer.Option(help="Random seed (0 to 2**32 - 1).")]
Quiet = Annotated[bool, typer.Option("--quiet", help="No progress bars.")]
TrainSeries = Annotated[
    Path,
    typer.Option(
        help="Training series (CSV/Parquet/NPZ/NPY), mostly normal, or a dataset name (SMD/machine-1-2: its "
        "train part, from --data-dir)."
    ),
]
Set = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Detector parameter KEY=VALUE (repeatable), e.g. --set window=50 --set max_epochs=5."
    ),
]
Resume = Annotated[
    bool,
    typer.Option("--resume", help="Continue an interrupted fit from the checkpoint in the model folder."),
]
TimestampCol = Annotated[
    str | None,
    typer.Option(
        help="Timestamp column of the CSV/Parquet files (default: one named timestamp, time, date ...)."
    ),
]
Threshold = Annotated[
    str | None,
    typer.Option(
        help="Where the threshold goes: contamination (the training quantile, the default), pot, spot or "
        "dspot (extreme-value rules on the training scores; spot/dspot adapt along the test series)."
    ),
]
Contamination = Annotated[
    str | None,
    typer.Option(
        help='Expected share of anomalous training points for --threshold contamination, e.g. 0.01, or "auto" '
        "(the far-out fence Q3 + 3 IQR of the training scores)."
    ),
]


LabelCol = Annotated[
    str | None,
    typer.Option(help="Label column of the CSV/Parquet files (default: one named label, is_anomaly ...)."),
]
Scheduler = Annotated[
    str | None,
    typer.Option(help="Address of a running Dask scheduler (tcp://host:8786) instead of a local cluster."),
]
Jobs = Annotated[
    int,
    typer.Option(
        min=1,
        help="Cells run in parallel, as tasks of a local Dask cluster of this many worker processes sharing "
        "the cores (the fleet extra: pip install 'diffad[fleet]').",
    ),
]
