"""`diffad fleet detect | fit | score`: many series at once on a Dask cluster (:mod:`diffad.fleet`).

Exit codes: 0 when every series finished, 3 when some failed (the others are written; the summary names
the failures and their errors), 2 for a user error before any work."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import user_errors
from ._detectors import DETECTOR_OPTIONS, detector_from_command
from ._options import (
    Config,
    Contamination,
    DetectorOpt,
    Device,
    LabelCol,
    Preset,
    Quiet,
    Scheduler,
    Seed,
    Set,
    Threshold,
    TimestampCol,
    Window,
)

PARTIAL = 3  # the exit code of a fleet run in which some series failed

fleet_app = typer.Typer(
    help="Fit and score many series (hosts, services) at once on a Dask cluster; needs "
    "`pip install 'diffad[fleet]'`.",
    no_args_is_help=True,
)

Source = Annotated[
    str,
    typer.Argument(
        help="A folder with one sub-folder per series (train.* / test.* / labels.*), a quoted glob of "
        "series files, a long table (CSV/Parquet) with a series-id column, or a manifest (.json, or a CSV "
        "with series,train,test[,labels] columns).",
        show_default=False,
    ),
]
Out = Annotated[
    Path,
    typer.Option(
        help="Fleet folder: one folder per series, summary.csv, report.html (an earlier run is continued)."
    ),
]
Workers = Annotated[
    int | None,
    typer.Option(help="Worker processes of a local Dask cluster (default: the cores / --threads)."),
]
Threads = Annotated[int, typer.Option(min=1, help="Torch threads of each series' task.")]
IdCol = Annotated[str, typer.Option(help="Series-id column of a long table.")]
TrainFraction = Annotated[
    float | None,
    typer.Option(
        help="For series with no train/test parts (a glob, a table without a part column): the leading "
        "share of each series to train on, e.g. 0.5."
    ),
]


def _go(source: str, out: Path, quiet: bool, **kwargs: Any) -> None:
    from .. import fleet

    fleet.require_dask()
    summary = fleet.run(source, out, progress=not quiet, **kwargs)
    ok = summary["status"] == "ok"
    reused = int(summary["reused"].fillna(False).astype(bool).sum())
    typer.echo(
        f"{len(summary)} series: {int(ok.sum())} finished ({reused} reused from an earlier run), {int((~ok).sum())} failed"
    )
    for _, row in summary[~ok].head(10).iterrows():
        typer.secho(f"failed: {row['series']}: {row['error']}", fg=typer.colors.RED, err=True)
    if (~ok).sum() > 10:
        typer.secho(f"... and {int((~ok).sum()) - 10} more (summary.csv)", fg=typer.colors.RED, err=True)
    typer.echo(f"summary: {out / 'summary.csv'}  report: {out / 'report.html'}")
    if not ok.all():
        raise typer.Exit(code=PARTIAL)


def _with_detector(mode: str, source: str, out: Path, quiet: bool, **options: Any) -> None:
    """``fleet detect`` / ``fleet fit``: the detector from its options, the rest to :func:`diffad.fleet.run`."""
    det = detector_from_command(options, verbose=False)
    for key in (*DETECTOR_OPTIONS, "set_"):
        options.pop(key)
    _go(source, out, quiet, detector=det, mode=mode, **options)


@fleet_app.command("detect")
@user_errors
def fleet_detect(
    source: Source,
    out: Out,
    detector: DetectorOpt = None,
    preset: Preset = None,
    config: Config = None,
    set_: Set = None,
    window: Window = None,
    threshold: Threshold = None,
    contamination: Contamination = None,
    device: Device = None,
    seed: Seed = 0,
    workers: Workers = None,
    scheduler: Scheduler = None,
    threads: Threads = 1,
    id_col: IdCol = "series",
    train_fraction: TrainFraction = None,
    timestamp_col: TimestampCol = None,
    label_col: LabelCol = None,
    shared: Annotated[
        bool,
        typer.Option(
            "--shared",
            help="One model for each set of series with the same channels, fitted on all their training "
            "parts (in OUT/_shared/), instead of one model per series.",
        ),
    ] = False,
    quiet: Quiet = False,
) -> None:
    """Fit and score every series (as `diffad detect` does each one): OUT/<series>/ run folders, a ranked
    summary.csv and report.html."""
    _with_detector("detect", **locals())


@fleet_app.command("fit")
@user_errors
def fleet_fit(
    source: Source,
    out: Out,
    detector: DetectorOpt = None,
    preset: Preset = None,
    config: Config = None,
    set_: Set = None,
    window: Window = None,
    threshold: Threshold = None,
    contamination: Contamination = None,
    device: Device = None,
    seed: Seed = 0,
    workers: Workers = None,
    scheduler: Scheduler = None,
    threads: Threads = 1,
    id_col: IdCol = "series",
    train_fraction: TrainFraction = None,
    timestamp_col: TimestampCol = None,
    label_col: LabelCol = None,
    quiet: Quiet = False,
) -> None:
    """Fit a model on every series' training part: OUT/<series>/ model folders (for `fleet score --models OUT`)."""
    _with_detector("fit", **locals())


@fleet_app.command("score")
@user_errors
def fleet_score(
    source: Source,
    out: Out,
    models: Annotated[Path, typer.Option(help="The fleet folder of a `diffad fleet fit` run.")],
    workers: Workers = None,
    scheduler: Scheduler = None,
    threads: Threads = 1,
    id_col: IdCol = "series",
    train_fraction: TrainFraction = None,
    timestamp_col: TimestampCol = None,
    label_col: LabelCol = None,
    quiet: Quiet = False,
) -> None:
    """Score every series' test part with its model from MODELS: OUT/<series>/ run folders, summary, report."""
    _go(
        source,
        out,
        quiet,
        mode="score",
        models=models,
        workers=workers,
        scheduler=scheduler,
        threads=threads,
        id_col=id_col,
        train_fraction=train_fraction,
        timestamp_col=timestamp_col,
        label_col=label_col,
    )
