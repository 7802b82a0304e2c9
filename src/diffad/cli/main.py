"""The ``diffad`` command line (typer)."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer

from .._version import __version__
from ..data.files import read_column
from ..exceptions import ConfigError, DiffadError
from ..runtime import allocator_setting, keep_freed_memory
from ._common import exit_error, parse_ints, user_errors
from ._detectors import detector_from_command, make_detector
from ._inputs import is_dataset_name, read_part
from ._options import (
    Config,
    Contamination,
    DataDir,
    DetectorOpt,
    Device,
    Jobs,
    LabelCol,
    Preset,
    Quiet,
    Resume,
    Scheduler,
    Seed,
    Set,
    Threshold,
    TimestampCol,
    TrainSeries,
    Window,
)

app = typer.Typer(
    help="diffad: anomaly detection with diffusion and masked-modelling models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(
    help="Benchmark datasets: what is registered, what is found, what is inside.", no_args_is_help=True
)
app.add_typer(data_app, name="data")

AsJson = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print the run's summary as JSON (metrics as in metrics.json, events as in events.json).",
    ),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"diffad {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """diffad: anomaly detection with diffusion and masked-modelling models."""


@app.command()
def info() -> None:
    """Versions, compute device, thread count and allocator setting."""
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
        "malloc": "heap (freed memory kept for reuse; DIFFAD_MALLOC=system turns it off)"
        if allocator_setting() == "heap"
        else "system (glibc's default)",
        "DIFFAD_DATA": os.environ.get("DIFFAD_DATA", "(not set)"),
    }
    width = max(map(len, rows))
    for k, v in rows.items():
        typer.echo(f"{k:<{width}}  {v}")


@data_app.command("list")
def data_list(data_dir: DataDir = None) -> None:
    """Registered dataset collections and how many entities of each are found under the data dir."""
    from ..data.loaders import COLLECTIONS, resolve_data_dir

    try:
        root = resolve_data_dir(data_dir)
    except DiffadError as exc:
        root = None
        typer.secho(f"note: {exc}", fg=typer.colors.YELLOW, err=True)
    typer.echo(f"{'collection':<10}  {'kind':<8}  {'found':>5}  examples")
    for name, coll in COLLECTIONS.items():
        found = coll.entities(root or Path()) if (root is not None or not coll.needs_files) else []
        sample = ", ".join(f"{name}/{e}" if e != name else e for e in found[:2]) + (
            " ..." if len(found) > 2 else ""
        )
        typer.echo(
            f"{name:<10}  {coll.kind:<8}  {len(found):>5}  {sample or '(not found: ' + coll.source + ')'}"
        )


@data_app.command("show")
@user_errors
def data_show(
    name: Annotated[
        str,
        typer.Argument(
            help="e.g. SMD/machine-1-2, SMAP, SMAP/A-1, NAB/realKnownCause/nyc_taxi, UCR/135, ADBench/6_cardio"
        ),
    ],
    data_dir: DataDir = None,
    segments: Annotated[int, typer.Option(help="How many anomaly segments to list.")] = 10,
) -> None:
    """Shapes, channels, anomaly ratio and anomaly segments of one entity (or a summary of a collection)."""
    from ..data.loaders import list_entities, load_dataset, load_datasets

    try:
        names = list_entities(name, data_dir)
        if names != [name]:  # a collection: one line per entity
            typer.echo(f"{'entity':<40}  {'train':>12}  {'test':>12}  {'anomaly %':>9}")
            for ds in load_datasets(name, data_dir):
                typer.echo(
                    f"{ds.name:<40}  {ds.train.shape[0]:>7} x {ds.train.shape[1]:<3}  {ds.test.shape[0]:>7} x {ds.test.shape[1]:<3}  {100 * ds.anomaly_ratio:>9.2f}"
                )
            return
        ds = load_dataset(name, data_dir)
    except DiffadError as exc:
        exit_error(exc)
    from ..data.series import runs

    segs = list(zip(*(r.tolist() for r in runs(ds.test_labels)), strict=True))
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


# ------------------------------------------------------------------------------------- evaluate
from ..protocols import PA_TAG, PAPER_TAG  # noqa: E402


@app.command()
@user_errors
def evaluate(
    scores: Annotated[Path, typer.Option(help="Scores: .npy, or a CSV with a 'score' column.")],
    labels: Annotated[Path, typer.Option(help="True 0/1 labels: .npy, or a CSV with a 'label' column.")],
    preds: Annotated[
        Path | None,
        typer.Option(help="0/1 decisions from a threshold fitted without test labels (.npy or CSV)."),
    ] = None,
    window: Annotated[int, typer.Option(help="Window of VUS and range-AUC.")] = 100,
    scores_col: Annotated[str | None, typer.Option(help="Column of the scores CSV.")] = None,
    labels_col: Annotated[str | None, typer.Option(help="Column of the labels CSV.")] = None,
    preds_col: Annotated[str | None, typer.Option(help="Column of the preds CSV.")] = None,
    oracle: Annotated[
        bool, typer.Option(help="Also report best-over-thresholds (oracle) values, tagged.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Metrics of a scored series: honest ones first, then point-adjusted and oracle numbers, tagged."""
    import json

    from ..metrics import evaluate as run_metrics

    try:
        s = read_column(scores, ("score", "scores", "anomaly_score"), scores_col, "scores")
        y = read_column(labels, ("label", "labels", "is_anomaly", "anomaly"), labels_col, "labels")
        p = (
            read_column(preds, ("flag", "pred", "preds", "prediction", "label"), preds_col, "preds")
            if preds
            else None
        )
        result = run_metrics(y, s, p, window=window, oracle=oracle)
    except DiffadError as exc:
        exit_error(exc)
    if as_json:
        tagged = {k: {"value": v, "tag": _tag(k)} if _tag(k) else v for k, v in result.items()}
        typer.echo(json.dumps(tagged, indent=2))
        return
    typer.echo(_metrics_table(*_split_tagged(result)))


def _tag(key: str) -> str:
    if key.endswith("(oracle)"):
        return PAPER_TAG
    if key == "PA-F1":
        return PA_TAG
    return ""


def _metrics_table(honest: dict[str, float], tagged: dict[str, tuple[float, str]]) -> str:
    """Honest metrics first; the rest below a divider, each with its tag."""
    width = max(map(len, [*honest, *tagged]), default=10)
    lines = ["honest metrics (no threshold chosen on test labels)"]
    lines += [f"  {k:<{width}}  {v:.4f}" for k, v in honest.items()]
    if tagged:
        lines.append("not comparable to the above")
        lines += [f"  {k:<{width}}  {v:.4f}   [{tag}]" for k, (v, tag) in tagged.items()]
    return "\n".join(lines)


def _split_tagged(result: dict[str, float]) -> tuple[dict[str, float], dict[str, tuple[float, str]]]:
    return {k: v for k, v in result.items() if not _tag(k)}, {
        k: (v, _tag(k)) for k, v in result.items() if _tag(k)
    }


# ------------------------------------------------------------------------------ detect / fit / score
def _fit(det, frame: pd.DataFrame, checkpoint: Path, resume: bool, command: str):
    """Fit with a checkpoint after every epoch in folder ``checkpoint``; Ctrl-C says how to resume."""
    ckpt = checkpoint / "checkpoint.pt"
    if resume and det._supports_resume and not ckpt.is_file():
        typer.secho(
            f"note: --resume: no checkpoint in {checkpoint}; training from the first epoch.",
            fg=typer.colors.YELLOW,
            err=True,
        )
    if det._supports_resume:
        det.set_params(checkpoint_dir=str(checkpoint))
    try:
        det.fit(frame, resume=resume)
    except KeyboardInterrupt:
        if ckpt.is_file():
            typer.secho(
                f"interrupted: the last finished epoch is saved in {ckpt}. Run the same command with --resume to continue:\n"
                f"  {command} --resume",
                fg=typer.colors.YELLOW,
                err=True,
            )
        else:
            typer.secho(
                "interrupted before the first epoch finished: nothing was saved.",
                fg=typer.colors.YELLOW,
                err=True,
            )
        raise typer.Exit(code=130) from None
    if det._supports_resume:
        det.set_params(checkpoint_dir=None)  # the saved model does not point at this folder
    return det


def _report(result: dict, out: Path, has_model: bool, as_json: bool = False) -> None:
    metrics = result["metrics"]
    if as_json:  # the run's summary: metrics as in metrics.json, events as in events.json
        import json

        from ..events import events_to_json

        summary = {
            "out": str(out),
            "points": len(result["preds"]),
            "flagged": int(result["preds"].sum()),
            "metrics": metrics,
            "events": json.loads(events_to_json(result["events"])),
            "warnings": [{"code": w.code, "message": w.message} for w in result["warnings"]],
        }
        typer.echo(json.dumps(summary, indent=2, default=float))
        return
    if metrics:
        paper = {
            k: (v, PA_TAG if k == "PA-F1" else PAPER_TAG)
            for k, v in metrics[PAPER_TAG].items()
            if isinstance(v, float)
        }
        typer.echo(_metrics_table(metrics["honest"], paper))
    typer.echo(
        f"flagged {int(result['preds'].sum())} of {len(result['preds'])} points, {len(result['events'])} events"
    )
    for w in result["warnings"]:
        typer.secho(f"warning: {w.code}: {w.message}", fg=typer.colors.YELLOW, err=True)
    typer.echo(
        f"report: {out / 'report.html'}  (scores.csv, events.csv, plot.png{', metrics.json' if metrics else ''}{', model/' if has_model else ''}, run.json)"
    )


def _command_line() -> str:
    import shlex
    import sys

    return "diffad " + " ".join(shlex.quote(a) for a in sys.argv[1:] if a != "--resume")


def _check_outside(out: Path, **inputs: Path | None) -> None:
    """An input inside the run folder would be deleted when the new run replaces it."""
    for option, path in inputs.items():
        if path is not None and out.exists() and path.resolve().is_relative_to(out.resolve()):
            raise DiffadError(
                f"--{option}: expected a file outside --out {str(out)!r}, got {str(path)!r}, which is inside it: the new run "
                "replaces that folder whole, so the file would be lost. Copy it elsewhere first, or choose another --out."
            )


def _detect(
    train: pd.DataFrame,
    test: pd.DataFrame,
    y,
    out: Path,
    det,
    resume: bool,
    extra: dict[str, str] | None = None,
    as_json: bool = False,
    source: dict[str, str] | None = None,
) -> None:
    """Fit on ``train`` (checkpoints in OUT/model), then write the whole run folder in one step."""
    from ..fsio import atomic_write_text, check_output, claim, output_folder
    from ..persistence import write_model
    from ..report import write_frame_files

    check_output(out, "run", "--out")
    if y is not None and len(y) != len(test):
        raise DiffadError(
            f"labels: expected {len(test)} (one per row of the test series), got {len(y)}. Align the labels with --test."
        )
    with claim(out, "run", option="--out"):
        _fit(det, train, out / "model", resume, _command_line())
        with output_folder(out, "run", option="--out") as stage:
            write_model(det, stage / "model")
            for name, text in (extra or {}).items():
                atomic_write_text(stage / name, text)
            result = write_frame_files(stage, det, test, y, source=source, command=_command_line())
    _report(result, out, has_model=True, as_json=as_json)


@app.command()
@user_errors
def detect(
    train: TrainSeries,
    out: Annotated[
        Path, typer.Option(help="Output folder (new, empty, or an earlier diffad run, which is replaced).")
    ],
    test: Annotated[
        Path | None,
        typer.Option(
            help="Series to score, or a dataset name (its test part and labels; the default when --train is one).",
            show_default=False,
        ),
    ] = None,
    labels: Annotated[
        Path | None, typer.Option(help="True 0/1 labels of the test series (else its label column, if any).")
    ] = None,
    detector: DetectorOpt = None,
    preset: Preset = None,
    config: Config = None,
    set_: Set = None,
    window: Window = None,
    threshold: Threshold = None,
    contamination: Contamination = None,
    device: Device = None,
    seed: Seed = 0,
    resume: Resume = False,
    timestamp_col: TimestampCol = None,
    label_col: LabelCol = None,
    data_dir: DataDir = None,
    quiet: Quiet = False,
    as_json: AsJson = False,
) -> None:
    """Fit a detector (ImDiffusion unless --detector) on TRAIN, score TEST, write scores.csv, events.csv,
    report.html (self-contained), plot.png, metrics.json (with labels), run.json and model/. Every input is
    checked before training starts."""
    if test is None:
        if not is_dataset_name(train):
            raise ConfigError(
                "--test: expected the series to score (a file, or a dataset name); it is missing."
            )
        test = train
    det = detector_from_command(locals(), verbose=not quiet)
    columns: dict[str, Any] = {"timestamp_col": timestamp_col, "label_col": label_col, "data_dir": data_dir}
    tr = read_part(train, "train", **columns)
    te = read_part(test, "test", labels=labels, **columns)
    _check_outside(out, train=train, test=test, labels=labels, config=config)
    source = {"train": tr.source, "test": te.source} | ({"labels": str(labels)} if labels else {})
    _detect(tr.frame, te.frame, te.labels, out, det, resume, as_json=as_json, source=source)


@app.command()
@user_errors
def fit(
    train: TrainSeries,
    model: Annotated[
        Path,
        typer.Option(
            help="Folder to save the model in (new, empty, or an earlier diffad model, which is replaced)."
        ),
    ],
    detector: DetectorOpt = None,
    preset: Preset = None,
    config: Config = None,
    set_: Set = None,
    window: Window = None,
    threshold: Threshold = None,
    contamination: Contamination = None,
    device: Device = None,
    seed: Seed = 0,
    resume: Resume = False,
    timestamp_col: TimestampCol = None,
    label_col: LabelCol = None,
    data_dir: DataDir = None,
    quiet: Quiet = False,
) -> None:
    """Fit a detector (ImDiffusion unless --detector) on a training series and save it; for ImDiffusion a checkpoint after every epoch lets --resume
    continue an interrupted fit."""
    from ..fsio import claim
    from ..persistence import save

    det = detector_from_command(locals(), verbose=not quiet)
    tr = read_part(train, "train", timestamp_col=timestamp_col, label_col=label_col, data_dir=data_dir).frame
    with claim(model, "model", option="--model"):
        _fit(det, tr, model, resume, _command_line())
        save(det, model, option="--model")
    best = f" (best epoch {det.history_['best_epoch']})" if "best_epoch" in det.history_ else ""
    typer.echo(f"saved {type(det).__name__} to {model}{best}")


@app.command()
@user_errors
def score(
    model: Annotated[Path, typer.Option(help="Folder written by `diffad fit` or `diffad detect`.")],
    test: Annotated[
        Path, typer.Option(help="Series to score, or a dataset name (its test part and labels).")
    ],
    out: Annotated[
        Path, typer.Option(help="Output folder (new, empty, or an earlier diffad run, which is replaced).")
    ],
    labels: Annotated[Path | None, typer.Option(help="True 0/1 labels of the test series.")] = None,
    timestamp_col: TimestampCol = None,
    label_col: LabelCol = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Score a series with a saved model; writes the same files as `detect` (a model inside OUT is kept)."""
    import shutil

    from ..fsio import check_output, output_folder
    from ..persistence import load
    from ..report import write_frame_files

    det = load(model)
    te = read_part(
        test, "test", labels=labels, timestamp_col=timestamp_col, label_col=label_col, data_dir=data_dir
    )
    _check_outside(out, test=test, labels=labels)
    check_output(out, "run", "--out")
    inside = model.resolve().is_relative_to(out.resolve())
    with output_folder(out, "run", option="--out") as stage:
        if inside:  # scoring with the model of the run being replaced: the new run keeps it
            shutil.copytree(model, stage / model.resolve().relative_to(out.resolve()))
        source = {"model": str(model), "test": te.source} | ({"labels": str(labels)} if labels else {})
        result = write_frame_files(stage, det, te.frame, te.labels, source=source, command=_command_line())
    _report(result, out, has_model=inside, as_json=as_json)


@app.command()
@user_errors
def demo(
    out: Annotated[
        Path, typer.Option(help="Output folder (new, empty, or an earlier diffad run, which is replaced).")
    ] = Path("diffad-out/demo"),
    seed: Seed = 0,
    quiet: Quiet = False,
) -> None:
    """Generate a synthetic multivariate series with labelled anomalies, run `detect` with the fast
    preset on it, print the metrics and where the report is. The generated train.csv and test.csv are
    part of the run folder."""
    from ..data.synthetic import make_series

    data = make_series(n_train=3000, n_test=3000, n_channels=8, n_anomalies=12, seed=seed)
    cols = [f"metric_{i}" for i in range(data.train.shape[1])]
    train, test = pd.DataFrame(data.train, columns=cols), pd.DataFrame(data.test, columns=cols)
    extra = {
        "train.csv": train.to_csv(index=False),
        "test.csv": test.assign(label=data.labels).to_csv(index=False),
    }
    typer.echo(
        f"synthetic series: train {data.train.shape}, test {data.test.shape}, {len(data.segments)} anomalies "
        f"({', '.join(sorted({s.kind for s in data.segments}))}); train.csv and test.csv go into {out}"
    )
    _detect(
        train,
        test,
        data.labels,
        out,
        make_detector("ImDiffusion", "fast", {}, None, seed, not quiet),
        resume=False,
        extra=extra,
        source={
            "train": f"synthetic (diffad.data.synthetic.make_series, seed {seed}): train.csv",
            "test": "synthetic, with its labels: test.csv",
        },
    )


# ------------------------------------------------------------------------------------------- bench
@app.command()
@user_errors
def bench(
    target: Annotated[
        str | None, typer.Argument(help="CONFIG.toml to run, or `report` followed by a run folder.")
    ] = None,
    run_dir: Annotated[
        Path | None, typer.Argument(help="With `report`: the run folder (results/<name>).")
    ] = None,
    preset: Annotated[
        str | None, typer.Option(help="A built-in config instead of a file (see --list).")
    ] = None,
    results: Annotated[Path, typer.Option(help="Where runs are written.")] = Path("results"),
    jobs: Jobs = 1,
    scheduler: Scheduler = None,
    data_dir: DataDir = None,
    list_presets: Annotated[bool, typer.Option("--list", help="List the built-in configs.")] = False,
    seeds: Annotated[
        str | None,
        typer.Option(
            help="Run only these of the config's seeds, e.g. 0 or 0,1 (same run folder: a later full run resumes)."
        ),
    ] = None,
    datasets: Annotated[
        str | None,
        typer.Option(
            help="Run only these of the config's datasets, e.g. SMD/machine-1-2,SMD/machine-2-1 (same run folder)."
        ),
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Run a benchmark (detectors x datasets x seeds; finished cells are skipped on re-runs), or
    `diffad bench report RUN` to turn a run into markdown tables and figures."""
    import dataclasses

    from ..bench import load_config, preset_names, tables, write_report
    from ..bench.report import collect

    try:
        if list_presets:
            typer.echo("\n".join(preset_names()))
            return
        if target == "report":
            if run_dir is None:
                raise DiffadError(
                    "bench report: expected a run folder, got none. Usage: diffad bench report results/<run>"
                )
            path = write_report(run_dir)
            typer.echo(tables(collect(run_dir)))
            typer.echo(f"written: {path}")
            return
        cfg = load_config(Path(target) if target else None, preset)
        if data_dir is not None:
            cfg = dataclasses.replace(cfg, data_dir=str(data_dir))
        if seeds is not None:
            cfg = cfg.only_seeds(parse_ints(seeds, "--seeds"))
        if datasets is not None:
            cfg = cfg.only_datasets(tuple(d.strip() for d in datasets.split(",") if d.strip()))
    except DiffadError as exc:
        exit_error(exc)
    _run_bench_and_report(cfg, results, jobs, quiet, scheduler)


def _run_bench_and_report(
    cfg: Any, results: Path, jobs: int, quiet: bool, scheduler: str | None = None
) -> None:
    """Run a bench config's unfinished cells, then print the counts, failures and tables."""
    from ..bench import run_bench, tables
    from ..bench.report import collect

    try:
        summary = run_bench(cfg, results, jobs=jobs, verbose=not quiet, scheduler=scheduler)
    except DiffadError as exc:
        exit_error(exc)
    typer.echo(
        f"{summary['cells']} cells: {summary['ran']} run, {summary['skipped']} already finished, {len(summary['errors'])} failed"
    )
    for cell, err in summary["errors"].items():
        typer.secho(f"failed: {cell}\n{err}", fg=typer.colors.RED, err=True)
    typer.echo(tables(collect(results / cfg.name)))
    typer.echo(f"results: {results / cfg.name}  (diffad bench report {results / cfg.name})")
    if summary["errors"]:
        raise typer.Exit(code=1)


experiment_app = typer.Typer(
    help="Experiment suites of a detector (bench presets run with other datasets, seeds or parameters).",
    no_args_is_help=True,
)
app.add_typer(experiment_app, name="experiment")


@experiment_app.command("sdmae")
@user_errors
def experiment_sdmae(
    suite: Annotated[str, typer.Option(help="masking | ablation | grid.")] = "ablation",
    dataset: Annotated[
        list[str] | None,
        typer.Option(help="Dataset (repeat for several); default: the preset's (SYNTH/0, SMD/machine-2-1)."),
    ] = None,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = "0,1,2",
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Shared detector parameter KEY=VALUE (repeatable), e.g. max_epochs=10."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Where runs are written.")] = Path("results"),
    no_baselines: Annotated[
        bool, typer.Option("--no-baselines", help="Skip PCA and Isolation Forest.")
    ] = False,
    jobs: Jobs = 1,
    data_dir: DataDir = None,
    quiet: Quiet = False,
) -> None:
    """Self-distilled masked autoencoder: masking strategies, ablations or the hyper-parameter grid,
    with PCA and Isolation Forest in the same run (honest protocol). The suites are the bench presets
    sdmae-masking, sdmae-ablation and sdmae-grid; this runs one of them with other datasets, seeds or
    shared parameters (a run of its own, named by them), resumable like every bench run."""
    import dataclasses
    import hashlib
    import json

    from ..bench import load_config
    from ..config import parse_assignments
    from ..detectors import SelfDistilledMAEDetector

    suites = ("masking", "ablation", "grid")
    if suite not in suites:
        raise ConfigError(f"--suite: unknown {suite!r}; valid: {list(suites)}.")
    cfg = load_config(preset=f"sdmae-{suite}")
    shared = parse_assignments(set_)
    valid = sorted(SelfDistilledMAEDetector().get_params())
    unknown = sorted(set(shared) - set(valid))
    if unknown:  # before any work
        raise ConfigError(f"--set: unknown parameter(s) {unknown}; valid: {valid}.")
    sdmae = "SelfDistilledMAEDetector"
    detectors = tuple(
        dataclasses.replace(d, params={**d.params, **shared}) if d.detector == sdmae else d
        for d in cfg.detectors
        if d.detector == sdmae or not no_baselines
    )
    cfg = dataclasses.replace(cfg, detectors=detectors, datasets=tuple(dataset or cfg.datasets))
    cfg = dataclasses.replace(cfg, seeds=parse_ints(seeds, "--seeds"))
    if shared:  # other settings: another run folder, never mixed with the preset's cells
        digest = hashlib.sha1(json.dumps(shared, sort_keys=True).encode()).hexdigest()[:8]
        cfg = dataclasses.replace(cfg, name=f"{cfg.name}-{digest}")
    if data_dir is not None:
        cfg = dataclasses.replace(cfg, data_dir=str(data_dir))
    _run_bench_and_report(cfg, out, jobs, quiet)


from .fleet import fleet_app  # noqa: E402
from .imagegen import imagegen_app  # noqa: E402

app.add_typer(imagegen_app, name="imagegen")
app.add_typer(fleet_app, name="fleet")

from .serve import serve  # noqa: E402

app.command()(serve)


def _log_internal_error(exc: BaseException) -> Path | None:
    """Write the full traceback of an unexpected error to a log file; return its path (None if even
    that fails)."""
    import datetime
    import tempfile
    import traceback

    text = "".join(traceback.format_exception(exc))
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    for folder in (
        Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "diffad",
        Path(tempfile.gettempdir()) / "diffad",
    ):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"error-{stamp}-{os.getpid()}.log"
            path.write_text(f"diffad {__version__}, python {platform.python_version()}\n{text}")
            return path
        except OSError:
            continue
    return None


def main(argv: list[str] | None = None) -> None:
    """The ``diffad`` command. A user error ends with a message and exit code 2 (in each command); an
    unexpected error ends with a short message, exit code 1 and its traceback in a log file."""
    import sys

    keep_freed_memory()  # faster torch on the CPU, same numbers (see diffad.runtime)
    try:
        app(args=argv, prog_name="diffad")
    except KeyboardInterrupt:
        typer.secho("interrupted.", fg=typer.colors.YELLOW, err=True)
        sys.exit(130)
    except Exception as exc:  # an error in diffad itself, not in the user's input
        log = _log_internal_error(exc)
        where = (
            f"The full traceback is in {log}." if log else "The traceback could not be written to a log file."
        )
        typer.secho(
            f"internal error: {type(exc).__name__}: {exc}\n{where} Please report it with that file: this is a bug in diffad, "
            "not in your input.",
            fg=typer.colors.RED,
            err=True,
        )
        sys.exit(1)
