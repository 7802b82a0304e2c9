"""Experiment suites of the self-distilled masked autoencoder: masking strategies, ablations and a
hyper-parameter grid, each over datasets x seeds, with PCA and Isolation Forest measured in the same
run. Every number is the honest protocol of :func:`diffad.metrics.evaluate` (no point adjustment,
no threshold chosen on test labels).

Results go to ``<out>/<timestamp>/results.json`` (one record per configuration, dataset and seed)
with figures beside it: ``comparison.png`` (metric by configuration, mean and std over seeds),
``training_curves.png`` (validation loss per epoch), and for the grid ``grid_heatmap.png`` and
``hyperparameters.png``.
"""

from __future__ import annotations

import itertools
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..data.loaders import load_dataset
from ..detectors import IsolationForestDetector, PCADetector, SelfDistilledMAEDetector
from ..exceptions import ConfigError
from ..fsio import atomic_write_text
from ..metrics import HONEST_KEYS, evaluate

__all__ = ["SUITES", "suite_configs", "run_suite", "summarise"]

SUITES = ("masking", "ablation", "grid")
GRID = {"mask_ratio": (0.5, 0.6, 0.75), "distill_weight": (0.3, 0.5, 0.7), "d_model": (32, 64, 128)}
BASELINES = {"PCA": PCADetector, "IForest": IsolationForestDetector}


def suite_configs(suite: str) -> list[tuple[str, dict[str, Any]]]:
    """(name, SelfDistilledMAEDetector parameters) of each configuration of a suite."""
    if suite == "masking":
        return [(f"masking={m}", {"masking": m}) for m in ("patch", "token", "temporal", "feature")]
    if suite == "ablation":
        return [
            ("full", {}),
            ("teacher only", {"variant": "teacher"}),
            ("student only", {"variant": "student"}),
            ("no discrepancy loss", {"distill_weight": 0.0}),
            ("no masking", {"mask_ratio": 0.0}),
        ]
    if suite == "grid":
        keys = list(GRID)
        return [
            (
                ", ".join(f"{k}={v}" for k, v in zip(keys, vals, strict=True)),
                dict(zip(keys, vals, strict=True)),
            )
            for vals in itertools.product(*GRID.values())
        ]
    raise ConfigError(f"suite: unknown {suite!r}; valid: {list(SUITES)}.")


def _record(
    name: str, params: dict[str, Any], dataset: str, seed: int, det: Any, ds: Any, window: int, fit_s: float
) -> dict[str, Any]:
    t0 = time.perf_counter()
    scores = np.asarray(det.decision_function(ds.test), dtype=np.float64)
    preds = np.asarray(det.predict(ds.test))
    score_s = time.perf_counter() - t0
    metrics = {
        k: v
        for k, v in evaluate(ds.test_labels, scores, preds, window=window, oracle=False).items()
        if k in HONEST_KEYS
    }
    hist = getattr(det, "history_", {}) or {}
    return {
        "config": name,
        "params": params,
        "dataset": dataset,
        "seed": seed,
        "metrics": metrics,
        "fit_s": fit_s,
        "score_s": score_s,
        "val_loss": list(hist.get("val_loss", [])),
        "train_loss": list(hist.get("train_loss", [])),
    }


def run_suite(
    suite: str,
    datasets: list[str],
    seeds: list[int],
    out: str | Path = "results/sdmae",
    params: dict[str, Any] | None = None,
    baselines: bool = True,
    data_dir: str | None = None,
    metric_window: int = 100,
    verbose: bool = True,
) -> Path:
    """Run one suite; return the folder it wrote (``<out>/<timestamp>``). ``params`` are shared
    detector parameters (e.g. a smaller ``max_epochs``), overridden by each configuration's own."""
    configs = suite_configs(suite)
    params = dict(params or {})
    unknown = sorted(set(params) - set(SelfDistilledMAEDetector().get_params()))
    if unknown:  # fail before any work
        raise ConfigError(
            f"--set: unknown parameter(s) {unknown}; valid: {sorted(SelfDistilledMAEDetector().get_params())}."
        )
    folder = Path(out) / datetime.now().strftime("%Y%m%d-%H%M%S")
    folder.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    jobs = [(n, p, d, s) for d in datasets for s in seeds for n, p in configs]
    if baselines:
        jobs += [
            (n, {}, d, s) for d in datasets for s in seeds[:1] for n in BASELINES
        ]  # deterministic: one seed
    cache: dict[str, Any] = {}
    for name, cfg, dataset, seed in tqdm(jobs, desc=f"sdmae {suite}", disable=not verbose, unit="run"):
        ds = cache.setdefault(dataset, load_dataset(dataset, data_dir))
        det = (
            BASELINES[name]()
            if name in BASELINES
            else SelfDistilledMAEDetector(**{**params, **cfg, "random_state": seed})
        )
        t0 = time.perf_counter()
        det.fit(ds.train)
        records.append(_record(name, cfg, dataset, seed, det, ds, metric_window, time.perf_counter() - t0))
        atomic_write_text(
            folder / "results.json",
            json.dumps({"suite": suite, "params": params, "records": records}, indent=1),
        )
    plot_suite(folder, suite)
    return folder


def summarise(records: list[dict[str, Any]], key: str = "AUC-ROC") -> dict[str, tuple[float, float, int]]:
    """{config: (mean, std, runs)} of honest ``key`` over datasets and seeds."""
    out: dict[str, tuple[float, float, int]] = {}
    for name in dict.fromkeys(r["config"] for r in records):
        v = [r["metrics"][key] for r in records if r["config"] == name]
        out[name] = (float(np.mean(v)), float(np.std(v)), len(v))
    return out


def plot_suite(folder: str | Path, suite: str) -> list[Path]:
    """Figures of a finished suite folder (see the module docstring)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    folder = Path(folder)
    records = json.loads((folder / "results.json").read_text())["records"]
    written = []
    names = list(dict.fromkeys(r["config"] for r in records))
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(names) + 3), 3.6))
    for j, key in enumerate(("AUC-ROC", "AUC-PR", "VUS-PR")):
        s = summarise(records, key)
        ax.bar(
            np.arange(len(names)) + 0.27 * j,
            [s[n][0] for n in names],
            0.27,
            yerr=[s[n][1] for n in names],
            label=key,
        )
    ax.set_xticks(np.arange(len(names)) + 0.27, names, rotation=35, ha="right", fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_title(f"SDMAE {suite} (honest protocol; mean ± std over datasets and seeds)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    written.append(folder / "comparison.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name in names:
        r = next((r for r in records if r["config"] == name and r["val_loss"]), None)
        if r is not None:
            ax.plot(np.arange(1, len(r["val_loss"]) + 1), r["val_loss"], label=name, lw=1)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation loss")
    ax.set_yscale("log")
    ax.set_title("training curves (first dataset and seed of each configuration)", fontsize=9)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    written.append(folder / "training_curves.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    if suite == "grid":
        grid = [r for r in records if r["config"] not in BASELINES]
        mean = {n: v[0] for n, v in summarise(grid).items()}
        fig, axes = plt.subplots(1, len(GRID["d_model"]), figsize=(4 * len(GRID["d_model"]), 3.4))
        for ax, dm in zip(np.atleast_1d(axes), GRID["d_model"], strict=True):
            M = np.full((len(GRID["mask_ratio"]), len(GRID["distill_weight"])), np.nan)
            for i, mr in enumerate(GRID["mask_ratio"]):
                for k, lw in enumerate(GRID["distill_weight"]):
                    M[i, k] = mean.get(f"mask_ratio={mr}, distill_weight={lw}, d_model={dm}", np.nan)
            lo, hi = np.nanmin(list(mean.values())), np.nanmax(list(mean.values()))
            im = ax.imshow(M, cmap="viridis", vmin=lo, vmax=hi)
            for (i, k), v in np.ndenumerate(M):
                ax.text(
                    k,
                    i,
                    f"{v:.3f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="w" if v < (lo + hi) / 2 else "k",
                )
            ax.set_xticks(range(len(GRID["distill_weight"])), GRID["distill_weight"])
            ax.set_yticks(range(len(GRID["mask_ratio"])), GRID["mask_ratio"])
            ax.set_xlabel("distill_weight (lambda)")
            ax.set_ylabel("mask_ratio")
            ax.set_title(f"AUC-ROC, d_model={dm}", fontsize=9)
        fig.colorbar(im, ax=axes)
        written.append(folder / "grid_heatmap.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)

        fig, axes = plt.subplots(1, len(GRID), figsize=(4 * len(GRID), 3))
        for ax, (key, values) in zip(axes, GRID.items(), strict=True):
            v = [[r["metrics"]["AUC-ROC"] for r in grid if r["params"][key] == val] for val in values]
            ax.errorbar(
                range(len(values)),
                [np.mean(x) for x in v],
                yerr=[np.std(x) for x in v],
                marker="o",
                capsize=3,
            )
            ax.set_xticks(range(len(values)), values)
            ax.set_xlabel(key)
            ax.set_ylabel("AUC-ROC (mean over the rest)")
        fig.tight_layout()
        written.append(folder / "hyperparameters.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    return written
