"""Turn a bench run's cells into markdown tables (mean and std over seeds) and figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..fsio import atomic_write_text
from ..protocols import PAPER_TAG

__all__ = ["collect", "tables", "write_report"]

HONEST_COLUMNS = ("AUC-PR", "AUC-ROC", "VUS-PR", "VUS-ROC", "Standard-F1", "Affiliation-F")
PAPER_COLUMNS = ("PA-F1", "R-AUC-PR")
INTERPRETATION_COLUMNS = ("HitRate@100%", "HitRate@150%", "z-score HitRate@100%", "z-score HitRate@150%")
TABULAR_HONEST = ("AUC-ROC", "AUC-PR", "F1")
TABULAR_PAPER = ("F1@k",)


def collect(run_dir: str | Path) -> list[dict[str, Any]]:
    """Summaries of the finished cells of a run (``done.json`` files)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        from ..validation import fail

        raise fail(
            "bench run",
            "a folder written by `diffad bench`",
            repr(str(run_dir)),
            "Check the path (results/<run name>).",
        )
    return [json.loads(p.read_text()) for p in sorted(run_dir.glob("*/*/*/done.json"))]


def _fmt(vals: list[float]) -> str:
    return f"{np.mean(vals):.3f} ± {np.std(vals):.3f}" if len(vals) > 1 else f"{vals[0]:.3f}"


def _fmt_over_datasets(sel: list[dict[str, Any]], section: str, key: str) -> str:
    """Mean over datasets of the per-dataset seed means; the ± is the std over the seeds that finished
    every one of those datasets (none when fewer than two did, so an uneven run cannot skew it)."""
    by_ds: dict[str, dict[int, float]] = {}
    for c in sel:
        by_ds.setdefault(c["dataset"], {})[c["seed"]] = c[section][key]
    mean = float(np.mean([np.mean(list(v.values())) for v in by_ds.values()]))
    full = sorted(set.intersection(*(set(v) for v in by_ds.values())))
    if len(full) < 2:
        return f"{mean:.3f}"
    return f"{mean:.3f} ± {np.std([np.mean([v[s] for v in by_ds.values()]) for s in full]):.3f}"


def _section_table(
    cells: list[dict[str, Any]], section: str, cols: tuple[str, ...], timing: tuple[str, str, str]
) -> list[str]:
    """Rows per dataset and detector (mean ± std over seeds), then the mean over datasets (labelled
    "mean over k of n datasets" for a detector that has not finished every dataset of the run, so that
    its mean is not read beside the others as if it covered the same sets)."""
    detectors = list(dict.fromkeys(c["detector"] for c in cells))
    datasets = list(dict.fromkeys(c["dataset"] for c in cells if section in c))
    tkey, tname, tfmt = timing
    out = [
        f"### {section}\n",
        "| dataset | detector | " + " | ".join(cols) + f" | fit s | {tname} |",
        "|" + "---|" * (len(cols) + 4),
    ]
    for ds in [*datasets, None]:
        for det in detectors:
            sel = [
                c
                for c in cells
                if c["detector"] == det and (ds is None or c["dataset"] == ds) and section in c
            ]
            if not sel:
                continue
            if ds is None:
                covered = len({c["dataset"] for c in sel})
                label = (
                    "mean over datasets"
                    if covered == len(datasets)
                    else f"mean over {covered} of {len(datasets)} datasets"
                )
                texts = [_fmt_over_datasets(sel, section, k) for k in cols]
            else:
                label, texts = ds, [_fmt([c[section][k] for c in sel]) for k in cols]
            out.append(
                f"| {label} | {det} | "
                + " | ".join(texts)
                + f" | {np.mean([c['fit_s'] for c in sel]):.1f} | {np.mean([c[tkey] for c in sel]):{tfmt}} |"
            )
    return [*out, ""]


def _seed_means(
    cells: list[dict[str, Any]], key: str, section: str
) -> tuple[list[str], list[str], np.ndarray]:
    """(datasets, detectors, (datasets, detectors) array of the seed-mean of ``section[key]``; NaN where
    a detector has no finished cell on a dataset)."""
    detectors = list(dict.fromkeys(c["detector"] for c in cells))
    datasets = list(dict.fromkeys(c["dataset"] for c in cells))
    vals: dict[tuple[str, str], list[float]] = {}
    for c in cells:
        if section in c:
            vals.setdefault((c["dataset"], c["detector"]), []).append(c[section][key])
    means = np.array(
        [[np.mean(vals[d, m]) if (d, m) in vals else np.nan for m in detectors] for d in datasets]
    )
    return datasets, detectors, means


def rank_table(cells: list[dict[str, Any]], key: str = "AUC-ROC") -> str:
    """Average rank (1 = best; ties share the mean rank) of each detector over the datasets every
    detector finished, by the seed-mean of honest ``key``, with the mean of ``key`` beside it."""
    from scipy.stats import rankdata

    all_datasets, detectors, means = _seed_means(cells, key, "honest")
    complete = ~np.isnan(means).any(axis=1)
    datasets = [d for d, ok in zip(all_datasets, complete, strict=True) if ok]
    left_out = [d for d, ok in zip(all_datasets, complete, strict=True) if not ok]
    means = means[complete]
    if not datasets:
        return ""
    ranks = np.vstack([rankdata(-row) for row in means])
    order = np.argsort(ranks.mean(axis=0), kind="stable")
    title = f"### average rank by {key} over {len(datasets)} dataset{'s' * (len(datasets) != 1)}"
    note = f"\nLeft out (not every detector finished): {', '.join(left_out)}.\n" if left_out else ""
    out = [f"{title}\n{note}", f"| detector | average rank | mean {key} |", "|---|---|---|"]
    out += [f"| {detectors[j]} | {ranks[:, j].mean():.2f} | {means[:, j].mean():.3f} |" for j in order]
    return "\n".join([*out, ""])


def matrix_table(cells: list[dict[str, Any]], key: str = "AUC-ROC", section: str = "honest") -> str:
    """Markdown: one row per dataset, one column per detector, the seed-mean of ``section[key]``
    (best of each row in bold)."""
    datasets, detectors, table = _seed_means(cells, key, section)
    out = [
        f"### {key} ({section}) by dataset, mean over seeds\n",
        "| dataset | " + " | ".join(detectors) + " |",
        "|---|" + "---|" * len(detectors),
    ]
    for ds, means in zip(datasets, table, strict=True):
        best = np.nanmax(means)
        out.append(
            f"| {ds} | "
            + " | ".join("" if np.isnan(m) else (f"**{m:.3f}**" if m == best else f"{m:.3f}") for m in means)
            + " |"
        )
    return "\n".join([*out, ""])


def tables(cells: list[dict[str, Any]]) -> str:
    """Markdown: an honest and a paper-protocol table per kind of data (time series, tabular), per
    dataset and averaged over datasets; with several datasets also average-rank tables (time series:
    by AUC-PR and VUS-PR; tabular: by AUC-ROC) and dataset x detector matrices of the same metrics."""
    series = [c for c in cells if "protocol" not in c]
    tabular = [c for c in cells if "protocol" in c]
    out: list[str] = []
    for section, cols in (("honest", HONEST_COLUMNS), (PAPER_TAG, PAPER_COLUMNS)):
        if any(section in c for c in series):
            out += _section_table(series, section, cols, ("score_s", "score s", ".0f"))
    explained = [c for c in series if "HitRate@100%" in c.get("interpretation", {})]
    if explained:  # root-cause hints against interpretation labels, beside the z-score baseline
        out += _section_table(
            explained, "interpretation", INTERPRETATION_COLUMNS, ("score_s", "score s", ".0f")
        )
    if (
        len({c["dataset"] for c in series if "honest" in c}) > 1
    ):  # many entities (SMD's machines...): ranks and matrices
        keys = ("AUC-PR", "VUS-PR")
        out += [rank_table(series, k) for k in keys] + [matrix_table(series, k) for k in keys]
    for protocol in dict.fromkeys(c["protocol"] for c in tabular):
        sel = [c for c in tabular if c["protocol"] == protocol]
        out.append(f"## tabular, {protocol} protocol\n")
        for section, tcols in (("honest", TABULAR_HONEST), (PAPER_TAG, TABULAR_PAPER)):
            if any(section in c for c in sel):
                out += _section_table(sel, section, tcols, ("score_s_per_1000", "score s / 1000 rows", ".4f"))
        out.append(rank_table(sel))
        out.append(matrix_table(sel))
    return "\n".join(out)


def write_report(run_dir: str | Path) -> Path:
    """Write ``report.md`` and one figure per dataset (honest AUC-PR and VUS-PR by detector; AUC-ROC and AUC-PR for tabular sets) into the run."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    cells = collect(run_dir)
    md = [f"# Bench run `{run_dir.name}`\n", f"{len(cells)} finished cells.\n", tables(cells)]
    for ds in dict.fromkeys(c["dataset"] for c in cells):
        sel = [c for c in cells if c["dataset"] == ds and "honest" in c]
        if not sel:
            continue
        dets = list(dict.fromkeys(c["detector"] for c in sel))
        fig, ax = plt.subplots(figsize=(1.6 * len(dets) + 2, 3.2))
        keys = ("AUC-ROC", "AUC-PR") if "protocol" in sel[0] else ("AUC-PR", "VUS-PR")
        for j, key in enumerate(keys):
            means = [np.mean([c["honest"][key] for c in sel if c["detector"] == d]) for d in dets]
            stds = [np.std([c["honest"][key] for c in sel if c["detector"] == d]) for d in dets]
            ax.bar(np.arange(len(dets)) + 0.4 * j, means, 0.4, yerr=stds, label=key)
        ax.set_xticks(np.arange(len(dets)) + 0.2, dets, rotation=20, fontsize=8)
        ax.set_title(f"{ds} (honest)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        png = run_dir / f"{ds.replace('/', '__')}.png"
        fig.savefig(png, dpi=100)
        plt.close(fig)
        md.append(f"![{ds}]({png.name})")
    path = run_dir / "report.md"
    atomic_write_text(path, "\n".join(md) + "\n")
    return path
