"""Turn a bench run's cells into markdown tables (mean and std over seeds) and figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..persistence import atomic_write_text
from .runner import PAPER_TAG

__all__ = ["collect", "tables", "write_report"]

HONEST_COLUMNS = ("AUC-PR", "AUC-ROC", "VUS-PR", "VUS-ROC", "Standard-F1", "Affiliation-F")
PAPER_COLUMNS = ("PA-F1", "R-AUC-PR")


def collect(run_dir: str | Path) -> list[dict[str, Any]]:
    """Summaries of the finished cells of a run (``done.json`` files)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        from ..validation import fail

        raise fail("bench run", "a folder written by `diffad bench`", repr(str(run_dir)), "Check the path (results/<run name>).")
    return [json.loads(p.read_text()) for p in sorted(run_dir.glob("*/*/*/done.json"))]


def _fmt(vals: list[float]) -> str:
    return f"{np.mean(vals):.3f} ± {np.std(vals):.3f}" if len(vals) > 1 else f"{vals[0]:.3f}"


def tables(cells: list[dict[str, Any]]) -> str:
    """Markdown: one honest table and one paper-protocol table, per dataset and averaged over datasets."""
    detectors = list(dict.fromkeys(c["detector"] for c in cells))
    datasets = list(dict.fromkeys(c["dataset"] for c in cells))
    out = []
    for section, cols in (("honest", HONEST_COLUMNS), (PAPER_TAG, PAPER_COLUMNS)):
        if not any(section in c for c in cells):
            continue
        out.append(f"### {section}\n")
        out.append("| dataset | detector | " + " | ".join(cols) + " | fit s | score s |")
        out.append("|" + "---|" * (len(cols) + 4))
        for ds in [*datasets, "mean over datasets"]:
            for det in detectors:
                sel = [c for c in cells if c["detector"] == det and (ds == "mean over datasets" or c["dataset"] == ds) and section in c]
                if not sel:
                    continue
                if ds == "mean over datasets":  # mean over datasets of the per-dataset means, std over seeds of those
                    seeds = sorted({c["seed"] for c in sel})
                    per_seed = {s: [c for c in sel if c["seed"] == s] for s in seeds}
                    cells_ = [[float(np.mean([c[section][k] for c in per_seed[s]])) for s in seeds] for k in cols]
                else:
                    cells_ = [[c[section][k] for c in sel] for k in cols]
                out.append(f"| {ds} | {det} | " + " | ".join(_fmt(v) for v in cells_)
                           + f" | {np.mean([c['fit_s'] for c in sel]):.0f} | {np.mean([c['score_s'] for c in sel]):.0f} |")
        out.append("")
    return "\n".join(out)


def write_report(run_dir: str | Path) -> Path:
    """Write ``report.md`` and one figure per dataset (honest AUC-PR and VUS-PR by detector) into the run."""
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
        for j, key in enumerate(("AUC-PR", "VUS-PR")):
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
