"""Outputs of a detection run: ``scores.csv``, ``metrics.json``, ``plot.png``, ``report.html`` and
``run.json``, the run's envelope, which lists every file of the run.

A run folder is one unit (:mod:`diffad.fsio`): it is written in a staging folder beside the target and
swapped into place, so no file of an older run survives beside the new ones, two runs into the same
folder cannot interleave, and a target that holds other files is refused.
"""

from __future__ import annotations

import datetime
import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._version import __version__
from .events import EventRules, events_to_json
from .fsio import RUN_FORMAT, atomic_write_text, output_folder
from .htmlreport import ReportData, render_report, threshold_text, versions
from .plotting import plot_detection
from .protocols import PAPER_TAG, paper_metrics
from .sanity import check_run
from .validation import check_labels

__all__ = ["write_run", "write_run_files", "write_frame_files", "PAPER_TAG", "RUN_FORMAT"]


def _metrics(labels, scores, preds, detector, test_values, window) -> dict[str, Any]:
    """Honest metrics, and beside them (tagged) the point-adjusted and oracle values of ``evaluate`` and
    the detector's paper protocol (:func:`diffad.protocols.paper_metrics`)."""
    from .metrics import HONEST_KEYS, evaluate

    r = evaluate(labels, scores, preds, window=window)
    out: dict[str, Any] = {"honest": {k: v for k, v in r.items() if k in HONEST_KEYS}}
    paper = {k: v for k, v in r.items() if k not in out["honest"]}
    protocol = paper_metrics(detector, test_values, labels, scores, window=window)
    paper.update({f"paper protocol: {k}": v for k, v in protocol.items() if k != "R-AUC-PR"})
    out[PAPER_TAG] = paper
    return out


def write_run(
    out: str | Path, detector: Any, test_values: np.ndarray, *, option: str = "path", **files: Any
) -> dict[str, Any]:
    """Score ``test_values`` with a fitted detector and write the run folder ``out`` as one unit.

    ``files`` are the keyword arguments of :func:`write_run_files` (``index``, ``channels``, ``labels``,
    ``window``). An earlier run at ``out`` is replaced whole; a file or a folder of other files there is
    refused (:class:`PersistenceError`). Returns ``{"scores", "preds", "metrics" (dict or None), "files"}``.
    """
    with output_folder(out, "run", option=option) as stage:
        result = write_run_files(stage, detector, test_values, **files)
    result["files"] = [Path(out) / f.name for f in result["files"]]
    return result


def write_run_files(
    folder: Path,
    detector: Any,
    test_values: np.ndarray,
    *,
    index: pd.Index | None = None,
    channels: list[str] | None = None,
    labels: np.ndarray | None = None,
    window: int = 100,
    rules: EventRules | None = None,
    event_budget: int | None = None,
    source: dict[str, str] | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Write the run's files into the new staging ``folder`` (see :func:`write_run`), ``run.json``
    last: it lists every entry of the folder, including ones the caller put there before (``model/``).
    The run's sanity warnings (:mod:`diffad.sanity`, ``event_budget`` there) go into ``report.html``
    and ``run.json`` and are returned under ``"warnings"``. ``source`` (what was read, e.g.
    ``{"train": path, "test": path}``) and ``command`` are shown in the report and kept in ``run.json``."""
    n, K = test_values.shape
    if labels is not None:
        labels = check_labels(labels, n)  # before any work
    names = list(channels) if channels is not None else [f"ch{i}" for i in range(K)]
    created = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    scores = np.asarray(detector.decision_function(test_values), dtype=float)
    preds = np.asarray(detector.predict(test_values), dtype=int)
    columns: dict[str, Any] = {"score": scores, "flag": preds}  # flag: the detector's decision
    if labels is not None:
        columns["true_label"] = labels  # the ground truth, never confused with the decision
    table = pd.DataFrame(columns, index=index if index is not None else pd.RangeIndex(n, name="index"))
    explain = getattr(detector, "explain", None)
    blamed: list[tuple[str, float]] = []
    attr = None
    if explain is not None:
        attr = explain(test_values)
        for k, name in enumerate(names):
            table[f"attribution_{name}"] = attr[:, k]
        blamed = _blamed_channels(attr, preds, names)
    threshold = detector._score_threshold()
    events = detector.events_from(preds, scores, attr, index=index, channels=names, rules=rules)
    score_seconds = time.perf_counter() - t0
    warnings = check_run(detector, scores, preds, len(events), event_budget)
    buf = io.StringIO()
    events.to_csv(buf, index=False)
    atomic_write_text(folder / "events.csv", buf.getvalue())
    atomic_write_text(folder / "events.json", events_to_json(events))
    buf = io.StringIO()
    table.to_csv(
        buf, index=True, index_label=table.index.name or ("timestamp" if index is not None else "index")
    )
    atomic_write_text(folder / "scores.csv", buf.getvalue())
    files = [folder / "scores.csv", folder / "events.csv", folder / "events.json"]
    metrics = None
    if labels is not None:
        metrics = _metrics(labels, scores, preds, detector, test_values, window)
        atomic_write_text(folder / "metrics.json", json.dumps(metrics, indent=2))
        files.append(folder / "metrics.json")
    plot_detection(
        test_values,
        scores,
        preds,
        folder / "plot.png",
        labels=labels,
        threshold=threshold,
        index=index,
        channels=names,
        title=f"{type(detector).__name__}",
    )
    files.append(folder / "plot.png")
    run = {
        "source": dict(source or {}),
        "created": created,
        "command": command,
        "fit_seconds": getattr(detector, "fit_seconds_", None),
        "score_seconds": round(score_seconds, 3),
        "versions": versions(),
    }
    page = ReportData(
        values=np.asarray(test_values, dtype=np.float64),
        scores=scores,
        preds=preds,
        names=names,
        events=events,
        threshold=threshold,
        plot_png=(folder / "plot.png").read_bytes(),
        index=index,
        labels=labels,
        blamed=blamed,
        warnings=warnings,
        metrics=metrics,
        run=run,
    )
    atomic_write_text(folder / "report.html", render_report(detector, page))
    files.append(folder / "report.html")
    manifest = {
        "format": RUN_FORMAT,
        "format_version": 1,
        "diffad_version": __version__,
        "created": created,
        "detector": type(detector).__name__,
        "threshold": {"rule": threshold_text(detector), "value": threshold},
        **{k: v for k, v in run.items() if k not in ("created",)},
        "warnings": [w.to_dict() for w in warnings],
        "files": sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")),
    }
    atomic_write_text(folder / "run.json", json.dumps(manifest, indent=2))
    return {
        "scores": scores,
        "preds": preds,
        "metrics": metrics,
        "events": events,
        "warnings": warnings,
        "files": files,
    }


def write_frame_files(
    folder: Path,
    detector: Any,
    test: pd.DataFrame,
    labels: np.ndarray | None,
    *,
    source: dict[str, str] | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """:func:`write_run_files` for a series read by :func:`diffad.data.files.read_frame`: its columns name
    the channels and a time index (if any) dates the events. What ``diffad detect`` writes."""
    index = test.index if isinstance(test.index, pd.DatetimeIndex) else None
    return write_run_files(
        folder,
        detector,
        test,
        index=index,
        channels=list(test.columns),
        labels=labels,
        window=100,
        source=source,
        command=command,
    )


def _blamed_channels(
    attribution: np.ndarray, preds: np.ndarray, names: list[str], most: int = 10
) -> list[tuple[str, float]]:
    """The channels with the largest mean share of the score over the flagged points, with that share."""
    flagged = preds.astype(bool)
    if not flagged.any():
        return []
    share = np.nan_to_num(attribution[flagged], nan=0.0).mean(axis=0)  # (K,)
    order = np.argsort(-share, kind="stable")[:most]
    return [(names[k], float(share[k])) for k in order if share[k] > 0]
