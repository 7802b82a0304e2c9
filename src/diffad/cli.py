"""The ``diffad`` command line (typer)."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from . import __version__
from .exceptions import DiffadError

app = typer.Typer(help="diffad: anomaly detection with diffusion and masked-modelling models.", no_args_is_help=True, add_completion=False)
data_app = typer.Typer(help="Benchmark datasets: what is registered, what is found, what is inside.", no_args_is_help=True)
app.add_typer(data_app, name="data")

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Folder holding SMD/, SMAP_MSL/, NAB/ ... (default: $DIFFAD_DATA).", show_default=False),
]


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


@app.command()
def info() -> None:
    """Versions, compute device and thread count."""
    import torch

    cuda = torch.cuda.is_available()
    rows = {
        "diffad": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "device": f"cuda ({torch.cuda.get_device_name(0)})" if cuda else "cpu",
        "torch threads": str(torch.get_num_threads()),
        "cpu cores": str(os.cpu_count()),
        "DIFFAD_DATA": os.environ.get("DIFFAD_DATA", "(not set)"),
    }
    width = max(map(len, rows))
    for k, v in rows.items():
        typer.echo(f"{k:<{width}}  {v}")


@data_app.command("list")
def data_list(data_dir: DataDir = None) -> None:
    """Registered dataset collections and how many entities of each are found under the data dir."""
    from .data.loaders import COLLECTIONS, resolve_data_dir

    try:
        root = resolve_data_dir(data_dir)
    except DiffadError as exc:
        root = None
        typer.secho(f"note: {exc}", fg=typer.colors.YELLOW, err=True)
    typer.echo(f"{'collection':<10}  {'kind':<8}  {'found':>5}  examples")
    for name, coll in COLLECTIONS.items():
        found = coll.entities(root) if root is not None else []
        sample = ", ".join(f"{name}/{e}" if e != name else e for e in found[:2]) + (" ..." if len(found) > 2 else "")
        typer.echo(f"{name:<10}  {coll.kind:<8}  {len(found):>5}  {sample or '(not found: ' + coll.source + ')'}")


def _segments(y: np.ndarray) -> list[tuple[int, int]]:
    d = np.diff(np.concatenate([[0], y.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), (np.flatnonzero(d == -1) - 1).tolist(), strict=True))


@data_app.command("show")
def data_show(
    name: Annotated[str, typer.Argument(help="e.g. SMD/machine-1-2, SMAP, SMAP/A-1, NAB/realKnownCause/nyc_taxi, UCR/135, ADBench/6_cardio")],
    data_dir: DataDir = None,
    segments: Annotated[int, typer.Option(help="How many anomaly segments to list.")] = 10,
) -> None:
    """Shapes, channels, anomaly ratio and anomaly segments of one entity (or a summary of a collection)."""
    from .data.loaders import list_entities, load_dataset, load_datasets

    try:
        names = list_entities(name, data_dir)
        if names != [name]:  # a collection: one line per entity
            typer.echo(f"{'entity':<40}  {'train':>12}  {'test':>12}  {'anomaly %':>9}")
            for ds in load_datasets(name, data_dir):
                typer.echo(f"{ds.name:<40}  {ds.train.shape[0]:>7} x {ds.train.shape[1]:<3}  {ds.test.shape[0]:>7} x {ds.test.shape[1]:<3}  {100 * ds.anomaly_ratio:>9.2f}")
            return
        ds = load_dataset(name, data_dir)
    except DiffadError as exc:
        _fail(exc)
    segs = _segments(ds.test_labels)
    typer.echo(f"name           {ds.name}  ({ds.kind})")
    typer.echo(f"train          {ds.train.shape[0]} x {ds.train.shape[1]}")
    typer.echo(f"test           {ds.test.shape[0]} x {ds.test.shape[1]}")
    chans = ", ".join(ds.channels[:8]) + (" ..." if len(ds.channels) > 8 else "")
    typer.echo(f"channels       {len(ds.channels)}: {chans}")
    typer.echo(f"anomalies      {int(ds.test_labels.sum())} points, {100 * ds.anomaly_ratio:.2f} % of test")
    if ds.kind == "series":
        typer.echo(f"segments       {len(segs)}")
        for s, e in segs[:segments]:
            typer.echo(f"  [{s}, {e}]  length {e - s + 1}")
        if len(segs) > segments:
            typer.echo(f"  ... {len(segs) - segments} more")
    nan = int(np.isnan(ds.train).sum() + np.isnan(ds.test).sum())
    if nan:
        typer.echo(f"missing        {nan} NaN entries")


def main() -> None:
    app()
