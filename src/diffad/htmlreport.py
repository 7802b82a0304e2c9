"""``report.html``: one self-contained page that says what happened, when and where.

The page needs no other file and no network, so it survives being e-mailed or copied out of the run
folder: the zoomable plot is drawn by plotly.js, which is embedded in the page (about 5 MB), and every
figure is a PNG embedded as a ``data:`` URI. Where scripts do not run (a mail reader), the static PNG of
the same plot shows instead; where they do, the page hides it.

Sections, top to bottom: the summary line and the warnings (:mod:`diffad.sanity`), the events table
(times, duration, severity, blamed channels), the zoomable plot of the channels and the score with the
threshold and the events, per-event close-ups of the blamed channels, the threshold rule and value, the
channels to blame over all flagged points, the training curve, the metrics (with labels), and the run:
data source, times, versions, command and parameters.

plotly and matplotlib are imported lazily; without plotly the static plot is the only one.
"""

from __future__ import annotations

import base64
import html
import io
import json
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd

from ._version import __version__
from .data.series import runs
from .sanity import RunWarning

__all__ = ["ReportData", "render_report", "MAX_PLOT_POINTS", "MAX_CLOSEUPS", "MAX_PLOT_CHANNELS"]

MAX_PLOT_POINTS = 4000  # points per trace of the zoomable plot (a min/max envelope of longer series)
MAX_PLOT_CHANNELS = 12  # channels drawn, the most blamed first
MAX_CLOSEUPS = 8  # events with a close-up, the most severe first
_MAX_SHAPES = 400  # shaded spans (events and labelled segments) in the zoomable plot

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.2em auto;max-width:1200px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.4em 0}td,th{border:1px solid #bbb;padding:2px 6px;font-size:13px}
th{background:#eee}.scroll{max-height:28em;overflow:auto;display:inline-block}.num{text-align:right}.high{background:#fcc}.medium{background:#fec}
#warnings{border:2px solid #c60;padding:4px 10px;background:#fff6ec}
figure{margin:.6em 0}#closeups{display:grid;grid-template-columns:repeat(auto-fill,minmax(540px,1fr));gap:6px}figcaption{font-size:13px;color:#444}img{max-width:100%}
code,pre{background:#f4f4f4}pre{padding:6px;overflow-x:auto;font-size:12px}
"""


@dataclass
class ReportData:
    """What the page shows: the scored series and what the run derived from it."""

    values: np.ndarray  # (n, K) the test series
    scores: np.ndarray  # (n,)
    preds: np.ndarray  # (n,) 0/1 decisions
    names: list[str]  # K channel names
    events: pd.DataFrame  # diffad.events.find_events
    threshold: float  # on the score scale
    plot_png: bytes  # the static plot (plot.png)
    index: pd.Index | None = None  # timestamps, if the series has them
    labels: np.ndarray | None = None  # true 0/1 labels, if given
    blamed: Sequence[tuple[str, float]] = ()  # channels to blame over all flagged points
    warnings: Sequence[RunWarning] = ()
    metrics: dict | None = None
    run: dict[str, Any] = field(default_factory=dict)  # source, created, seconds, command


def render_report(detector: Any, data: ReportData) -> str:
    """The whole page as one string (see the module doc)."""
    n, K = data.values.shape
    flagged = int(np.asarray(data.preds).sum())
    head = (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        f"<title>diffad report: {html.escape(type(detector).__name__)}</title><style>{_CSS}</style>"
    )
    span = ""
    if data.index is not None and n:
        span = f", {html.escape(str(data.index[0]))} to {html.escape(str(data.index[-1]))}"
    summary = (
        f"<h1>{html.escape(type(detector).__name__)}</h1><p id=summary>{n} time points{span}, {K} channels, "
        f"{flagged} flagged, <b>{len(data.events)} events</b>.</p>"
    )
    parts = [
        head,
        summary,
        _warnings(data.warnings),
        _events_table(data.events, data.index is not None),
        _plot_section(data),
        _closeups(data),
        _threshold_section(detector, data.threshold),
        _blame_section(data.blamed, flagged),
        _training_section(detector),
        _metrics_section(data.metrics),
        _run_section(detector, data.run),
        "</html>",
    ]
    return "".join(parts)


# ----------------------------------------------------------------------------------------- pieces
def _png_tag(png: bytes, alt: str, ident: str = "") -> str:
    src = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return f"<img{f' id={ident}' if ident else ''} alt='{html.escape(alt)}' src='{src}'>"


def _warnings(warnings: Sequence[RunWarning]) -> str:
    if not warnings:
        return ""
    items = "".join(f"<li><b>{html.escape(w.code)}</b>: {html.escape(w.message)}</li>" for w in warnings)
    return f"<div id=warnings><h2>Warnings</h2><ul>{items}</ul></div>"


def _cell(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return f"<td class=num>{value:.3g}</td>"
    if isinstance(value, int | np.integer):
        return f"<td class=num>{value}</td>"
    return f"<td>{html.escape(str(value))}</td>"


def _channels_text(channels: str) -> str:
    """``"cpu:0.61;mem:0.20"`` as ``cpu 61 %, mem 20 %``."""
    out = []
    for item in filter(None, str(channels).split(";")):
        name, _, share = item.rpartition(":")
        try:
            out.append(f"{name} {100 * float(share):.0f} %")
        except ValueError:
            out.append(item)
    return ", ".join(out)


def _events_table(events: pd.DataFrame, timed: bool) -> str:
    if not len(events):
        return "<h2>Events</h2><p id=no-events>No events: no run of flagged points met the merging rules.</p>"
    cols = ["event", "start", "end", "duration"] + (["duration_s"] if timed else [])
    cols += ["peak_score", "mean_score", "severity", "grade"]
    if "channels" in events and events["channels"].astype(str).str.len().gt(0).any():
        cols.append("channels")  # only where the detector blames channels (explain)
    titles = {
        "duration": "duration (points)",
        "duration_s": "duration (s)",
        "peak_score": "peak score",
        "mean_score": "mean score",
        "channels": "blamed channels (share of the score)",
    }
    head = "".join(f"<th>{html.escape(titles.get(c, c))}</th>" for c in cols if c in events)
    rows = []
    for _, row in events.iterrows():
        cells = "".join(
            f"<td>{html.escape(_channels_text(row[c]))}</td>" if c == "channels" else _cell(row[c])
            for c in cols
            if c in events
        )
        rows.append(f"<tr class={html.escape(str(row.get('grade', '')))}>{cells}</tr>")
    return (
        f"<h2>Events</h2><p>{len(events)} events: flagged points grouped by the rules of "
        "<code>diffad.events.EventRules</code> (one-point flags dropped by default). Severity is how far "
        "the peak score rises above the threshold, in units of the threshold's height above the median "
        "training score: 0 at the threshold, 1 as far above it again; grade high from 3, medium from 1.</p>"
        f"<div class=scroll><table id=events><tr>{head}</tr>{''.join(rows)}</table></div>"
    )


def _order_channels(data: ReportData) -> list[int]:
    """Channel positions to draw: the most blamed first, then in their order, at most MAX_PLOT_CHANNELS."""
    position = {name: k for k, name in enumerate(data.names)}
    first = [position[name] for name, _ in data.blamed if name in position]
    rest = [k for k in range(len(data.names)) if k not in first]
    return (first + rest)[:MAX_PLOT_CHANNELS]


def envelope(y: np.ndarray, most: int = MAX_PLOT_POINTS) -> np.ndarray:
    """Positions that keep the shape of ``y`` in at most ``most`` points: the minimum and maximum of
    each of ``most // 2`` equal buckets, in time order (a spike survives, unlike plain striding)."""
    n = len(y)
    if n <= most:
        return np.arange(n)
    size = -(-n // (most // 2))  # points per bucket
    finite = np.where(np.isfinite(y), y, np.nanmean(y) if np.isfinite(y).any() else 0.0)
    padded = np.pad(finite, (0, -n % size), mode="edge").reshape(-1, size)
    base = np.arange(padded.shape[0]) * size
    keep = np.concatenate([base + padded.argmin(axis=1), base + padded.argmax(axis=1)])
    return np.unique(np.minimum(keep, n - 1))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _figure_png(fig) -> bytes:
    """A matplotlib figure as PNG bytes (the figure is closed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    _pyplot().close(fig)
    return buf.getvalue()


def _plot_section(data: ReportData) -> str:
    static = _png_tag(data.plot_png, "the channels, the score and the detected events", "plot-static")
    interactive = _interactive_plot(data)
    caption = (
        "<figcaption>Channels (standardised, the most blamed on top), the anomaly score and the threshold "
        "(dashed); events shaded red, labelled anomalies blue. Drag to zoom, double-click to reset."
        "</figcaption>"
    )
    if interactive is None:
        return f"<h2>Plot</h2><figure id=plot>{static}{caption}</figure>"
    # the static plot shows where scripts do not run; the script hides it once plotly has drawn
    hide = "<script>if(window.Plotly){document.getElementById('plot-static').style.display='none';}</script>"
    return f"<h2>Plot</h2><figure id=plot>{interactive}{static}{hide}{caption}</figure>"


def _interactive_plot(data: ReportData) -> str | None:
    try:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots
    except ImportError:
        return None
    values = np.asarray(data.values, dtype=float)
    n = len(values)
    x = np.asarray(data.index) if data.index is not None else np.arange(n)
    shown = _order_channels(data)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35], vertical_spacing=0.04)
    for row, k in enumerate(shown):
        col = values[:, k]
        z = (col - np.nanmean(col)) / (np.nanstd(col) + 1e-12)
        offset = 4.0 * (len(shown) - 1 - row)
        keep = envelope(z)
        fig.add_trace(
            go.Scattergl(x=x[keep], y=z[keep] + offset, mode="lines", name=data.names[k], line={"width": 1}),
            row=1,
            col=1,
        )
    scores = np.asarray(data.scores, dtype=float)
    keep = envelope(scores)
    fig.add_trace(
        go.Scattergl(
            x=x[keep], y=scores[keep], mode="lines", name="score", line={"width": 1, "color": "black"}
        ),
        row=2,
        col=1,
    )
    fig.add_hline(y=data.threshold, line={"dash": "dash", "color": "red", "width": 1}, row=2, col=1)
    # shaded spans over both panels, as one layout list (one add_vrect call per span is slow)
    spans = [
        (int(a), int(b), "red", 0.18)
        for a, b in zip(data.events["start_pos"], data.events["end_pos"], strict=True)
    ]
    if data.labels is not None:
        starts, ends = runs(np.asarray(data.labels))
        spans += [(a, b, "blue", 0.10) for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
    fig.update_layout(
        shapes=[
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "x0": x[a],
                "x1": x[b],
                "y0": 0,
                "y1": 1,
                "fillcolor": color,
                "opacity": alpha,
                "line": {"width": 0},
                "layer": "below",
            }
            for a, b, color, alpha in spans[:_MAX_SHAPES]
        ]
    )
    fig.update_yaxes(showticklabels=False, row=1, col=1)
    fig.update_yaxes(title_text="score", row=2, col=1)
    fig.update_layout(
        height=300 + 28 * len(shown),
        margin={"l": 50, "r": 20, "t": 20, "b": 30},
        legend={"font": {"size": 10}},
    )
    return fig.to_html(
        full_html=False,
        include_plotlyjs=True,
        div_id="plot-interactive",
        config={"displaylogo": False, "responsive": True},
    )


def _event_channels(data: ReportData, ev: pd.Series, top: int = 3) -> list[int]:
    position = {name: k for k, name in enumerate(data.names)}
    named = [item.rpartition(":")[0] for item in filter(None, str(ev.get("channels", "")).split(";"))]
    chosen = [position[c] for c in named if c in position][:top]
    if not chosen:  # no attribution: the channels that stray furthest from their typical level
        s, e = int(ev["start_pos"]), int(ev["end_pos"]) + 1
        v = np.asarray(data.values, dtype=float)
        z = np.abs((v[s:e] - np.nanmedian(v, 0)) / (np.nanstd(v, 0) + 1e-12))
        chosen = list(np.argsort(-np.nanmax(z, axis=0), kind="stable")[:top])
    return [int(k) for k in chosen]


def _closeups(data: ReportData) -> str:
    if not len(data.events):
        return ""
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()

    ranked = data.events.sort_values("severity", ascending=False, kind="stable").head(MAX_CLOSEUPS)
    n = len(data.values)
    x = np.asarray(data.index) if data.index is not None else np.arange(n)
    figures = []
    for _, ev in ranked.iterrows():
        s, e = int(ev["start_pos"]), int(ev["end_pos"])
        pad = max(20, e - s + 1)
        a, b = max(0, s - pad), min(n, e + pad + 1)
        chans = _event_channels(data, ev)
        rows = len(chans) + 1
        fig, axes = plt.subplots(rows, 1, figsize=(6.5, 0.7 * rows + 0.5), sharex=True, squeeze=False)
        axes = axes[:, 0]
        series: list[tuple[np.ndarray, str, str | None]] = [
            (data.values[a:b, k], data.names[k], None) for k in chans
        ]
        series.append((data.scores[a:b], "score", "black"))
        for ax, (y, name, color) in zip(axes, series, strict=True):
            ax.plot(x[a:b], y, lw=0.8, color=color)
            ax.axvspan(x[s], x[e], color="tab:red", alpha=0.15, lw=0)
            ax.set_ylabel(name, fontsize=7, rotation=0, ha="right", va="center")
            ax.yaxis.set_major_locator(MaxNLocator(2))
            ax.tick_params(labelsize=6)
        axes[-1].axhline(data.threshold, color="tab:red", lw=0.7, ls="--")
        axes[-1].xaxis.set_major_locator(MaxNLocator(6))
        fig.subplots_adjust(left=0.16, right=0.98, top=0.97, bottom=0.4 / (0.7 * rows + 0.5), hspace=0.15)
        png = _figure_png(fig)
        caption = (
            f"Event {int(ev['event'])}: {html.escape(str(ev['start']))} to {html.escape(str(ev['end']))}, "
            f"severity {float(ev['severity']):.2f} ({html.escape(str(ev['grade']))}); "
            + html.escape(
                _channels_text(ev.get("channels", "")) or "no attribution: the channels that stray furthest"
            )
        )
        image = _png_tag(png, f"close-up of event {int(ev['event'])}")
        figures.append(f"<figure class=closeup>{image}<figcaption>{caption}</figcaption></figure>")
    more = f" (the {len(ranked)} most severe of {len(data.events)})" if len(data.events) > len(ranked) else ""
    return f"<h2>Close-ups{more}</h2><div id=closeups>{''.join(figures)}</div>"


def threshold_text(detector: Any) -> str:
    """The decision rule of a fitted detector in one sentence."""
    params = detector.get_params()
    if "vote_ratio" in params:
        xi = getattr(detector, "vote_level_", None)
        text = (
            "step-ensemble vote: each ensemble step has its own threshold, the "
            f"(1 - {params['vote_ratio']}) quantile of its validation errors; a point is flagged when more than "
            f"xi = {xi} steps exceed theirs. "
        )
        if params.get("score") == "vote":
            return (
                text
                + "The score is the (xi+1)-th largest per-step ratio error / threshold, so score > 1 is the vote."
            )
        return text + (
            "The score is the mean per-step ratio error / threshold (it ranks points; the vote decides, "
            "so a point near the line can fall either side of it)."
        )
    rule = params.get("threshold", "contamination")
    if rule == "contamination":
        c = params.get("contamination", 0.01)
        if c == "auto":
            return "contamination=auto: the far-out fence Q3 + 3 IQR of the training scores."
        return (
            f"contamination: the (1 - {c}) quantile of the training scores (about {c:.1%} of them above it)."
        )
    text = "POT: a generalised Pareto tail fitted to the training scores above their 98 % level, risk 1e-3"
    if rule in ("spot", "dspot"):
        text += f"; {rule.upper()} then moves the threshold along the scored series (the value is where it starts)"
    return text + "."


def _threshold_section(detector: Any, threshold: float) -> str:
    return (
        f"<h2>Threshold</h2><p id=threshold>Rule: {html.escape(threshold_text(detector))} "
        f"Value on the score scale: <b>{threshold:.6g}</b>; a point is flagged when its score is above it.</p>"
    )


def _blame_section(blamed: Sequence[tuple[str, float]], flagged: int) -> str:
    if not blamed:
        return ""
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td class=num>{100 * v:.1f} %</td></tr>" for name, v in blamed
    )
    return (
        f"<h2>Channels to blame</h2><p>Mean share of the anomaly score over the {flagged} flagged points "
        f"(from <code>explain</code>).</p><table id=blame><tr><th>channel</th><th>share</th></tr>{rows}</table>"
    )


def _training_section(detector: Any) -> str:
    history = getattr(detector, "history_", None) or {}
    curves = {k: history[k] for k in ("train_loss", "val_loss") if history.get(k)}
    if not curves:
        return ""
    fig, ax = _pyplot().subplots(figsize=(6, 2.6))
    for name, losses in curves.items():
        ax.plot(np.arange(1, len(losses) + 1), losses, marker=".", lw=1, label=name.replace("_", " "))
    best = history.get("best_epoch")
    if best is not None:
        ax.axvline(int(best) + 1, color="grey", lw=0.7, ls=":", label=f"best epoch ({int(best) + 1})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend(fontsize=7)
    fig.tight_layout()
    png = _figure_png(fig)
    epochs = len(next(iter(curves.values())))
    stopped = history.get("stopped_by")
    seconds = sum(history.get("epoch_seconds") or [])
    note = (
        f"{epochs} epochs"
        + (f", {seconds:.1f} s" if seconds else "")
        + (f", stopped by {stopped}" if stopped else "")
    )
    return f"<h2>Training</h2><figure id=training>{_png_tag(png, 'training curve')}<figcaption>{html.escape(note)}.</figcaption></figure>"


def _metrics_section(metrics: dict | None) -> str:
    if not metrics:
        return ""
    rows = ""
    for section, values in metrics.items():
        rows += f"<tr><th colspan=2>{html.escape(section)}</th></tr>"
        rows += "".join(f"<tr><td>{html.escape(k)}</td>{_cell(v)}</tr>" for k, v in values.items())
    return f"<h2>Metrics</h2><table id=metrics>{rows}</table>"


def versions() -> dict[str, str]:
    """Versions of diffad, Python and the libraries a run depends on (not importing them)."""
    out = {"diffad": __version__, "python": platform.python_version()}
    for dist in ("numpy", "pandas", "scikit-learn", "scipy", "torch", "plotly"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def _run_section(detector: Any, run: dict[str, Any]) -> str:
    rows = []
    for key, value in (run.get("source") or {}).items():
        rows.append((f"data: {key}", str(value)))
    for key in ("created", "command"):
        if run.get(key):
            rows.append((key, str(run[key])))
    for key in ("fit_seconds", "score_seconds"):
        if run.get(key) is not None:
            rows.append((key.replace("_", " "), f"{float(run[key]):.2f}"))
    rows += [(f"version: {k}", v) for k, v in (run.get("versions") or versions()).items()]
    rows.append(("machine", f"{platform.system()} {platform.machine()}"))
    table = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in rows)
    params = html.escape(json.dumps(detector.get_params(), default=str, indent=1))
    return f"<h2>Run</h2><table id=run>{table}</table><h2>Parameters</h2><pre>{params}</pre>"
