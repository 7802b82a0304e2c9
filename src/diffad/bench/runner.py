"""Run detectors x datasets x seeds; one folder per cell; finished cells are skipped on re-runs.

A cell is finished when its ``done.json`` exists: it is written last (atomically), so a run killed
half-way through a cell recomputes that cell only.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..data.loaders import list_entities, load_dataset
from ..exceptions import ConfigError
from ..fsio import atomic_write_bytes, atomic_write_text
from ..metrics import (
    HONEST_KEYS,
    auc_pr,
    auc_roc,
    evaluate,
    f1_score,
)
from ..metrics.interpretation import interpretation_scores, zscore_attribution
from ..parallel import dask_client, worker_setup
from ..protocols import PAPER_TAG, paper_metrics
from ..runtime import allocator_setting
from .config import BenchConfig, DetectorSpec

__all__ = ["Cell", "plan", "run_bench", "cell_dir", "tabular_split"]


def _safe(name: str) -> str:
    return name.replace("/", "__")


def cell_dir(results: Path, run: str, detector: str, dataset: str, seed: int) -> Path:
    return results / run / _safe(detector) / _safe(dataset) / str(seed)


Cell = tuple[DetectorSpec, str, int]


def plan(cfg: BenchConfig) -> list[Cell]:
    """Every (detector, dataset entity, seed); collections expand to the entities found."""
    entities: list[str] = []
    for name in cfg.datasets:
        entities += [e for e in list_entities(name, cfg.data_dir) if e not in entities]
    return [
        (d, e, s)
        for d in cfg.detectors
        for e in entities
        for s in (d.seeds if d.seeds is not None else cfg.seeds)
    ]


def tabular_split(
    X: np.ndarray, y: np.ndarray, protocol: str, seed: int, max_rows: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, test, test labels) of a tabular set under ``protocol``, standardised with statistics of
    the training part (scikit-learn's StandardScaler). Sets above ``max_rows`` rows are first cut to a
    stratified random subsample of ``max_rows`` rows (drawn with ``seed``)."""
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    if max_rows is not None and len(X) > max_rows:
        keep = np.concatenate(
            [
                rng.choice(np.flatnonzero(y == c), int(round(max_rows * np.mean(y == c))), replace=False)
                for c in (0, 1)
            ]
        )
        keep.sort()
        X, y = X[keep], y[keep]
    if protocol == "unsupervised":
        train, test, y_test = X, X, y
    else:
        normal = rng.permutation(np.flatnonzero(y == 0))
        half = len(normal) // 2
        test_idx = np.sort(np.concatenate([normal[half:], np.flatnonzero(y == 1)]))
        train, test, y_test = X[np.sort(normal[:half])], X[test_idx], y[test_idx]
    scaler = StandardScaler().fit(train)
    return scaler.transform(train), scaler.transform(test), y_test


def _tabular_metrics(
    y: np.ndarray, scores: np.ndarray, preds: np.ndarray
) -> tuple[dict[str, float], dict[str, float]]:
    """Honest (threshold-free AUCs, F1 at the detector's own threshold) and the published protocol's
    F1 at the true anomaly count (which reads the test labels)."""
    k = int(y.sum())
    top = np.zeros_like(y)
    top[np.argsort(-scores, kind="stable")[:k]] = 1
    honest = {"AUC-ROC": auc_roc(y, scores), "AUC-PR": auc_pr(y, scores), "F1": f1_score(y, preds)}
    return honest, {"F1@k": f1_score(y, top)}


def run_cell(cfg: BenchConfig, spec: DetectorSpec, dataset: str, seed: int, out: Path) -> dict[str, Any]:
    """Fit, score and evaluate one cell; write its files; return its summary."""
    ds = load_dataset(dataset, cfg.data_dir)
    train, test, labels = ds.train, ds.test, ds.test_labels
    if ds.kind == "tabular":
        train, test, labels = tabular_split(ds.test, ds.test_labels, cfg.tabular_protocol, seed, cfg.max_rows)
    det = spec.build(seed)
    t0 = time.perf_counter()
    det.fit(train)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    scores = np.asarray(det.decision_function(test), dtype=np.float64)
    score_s = time.perf_counter() - t0
    preds = np.asarray(det.predict(test), dtype=np.int64)
    summary: dict[str, Any] = {
        "detector": spec.name,
        "dataset": dataset,
        "seed": seed,
        "fit_s": fit_s,
        "score_s": score_s,
        "points_per_s": len(test) / max(score_s, 1e-9),
        "n_train": len(train),
        "n_test": len(test),
        "ran_on": _ran_on(det),
        **_epochs(det),
    }
    if ds.kind == "tabular":
        summary["protocol"] = cfg.tabular_protocol
        summary["score_s_per_1000"] = 1000.0 * score_s / len(test)
        honest, paper = _tabular_metrics(labels, scores, preds)
        if "honest" in cfg.protocols:
            summary["honest"] = honest
        if "paper" in cfg.protocols:
            summary[PAPER_TAG] = paper
    else:
        if "honest" in cfg.protocols:  # point-adjusted numbers never sit among the honest ones
            honest = evaluate(labels, scores, preds, window=cfg.metric_window, oracle=False)
            summary["honest"] = {k: v for k, v in honest.items() if k in HONEST_KEYS}
        if "paper" in cfg.protocols:
            summary[PAPER_TAG] = paper_metrics(
                det,
                ds.test,
                ds.test_labels,
                scores,
                window=cfg.metric_window,
                default_r=cfg.vote_ratio_paper,
                dataset=ds.name,
            )
        if ds.meta.get("interpretation"):
            summary["interpretation"] = _interpretation(det, train, test, ds.meta["interpretation"])
    out.mkdir(parents=True, exist_ok=True)
    for name, arr in (("scores.npy", scores), ("preds.npy", preds)):
        import io

        buf = io.BytesIO()
        np.save(buf, arr)
        atomic_write_bytes(out / name, buf.getvalue())
    atomic_write_text(
        out / "config.json",
        json.dumps(
            {"bench": cfg.name, "detector": asdict(spec), "seed": seed, "params": _plain_params(det)},
            indent=1,
            default=str,
        ),
    )
    atomic_write_text(
        out / "done.json", json.dumps(summary, indent=1, default=float)
    )  # last: marks the cell finished
    return summary


def _interpretation(det: Any, train: np.ndarray, test: np.ndarray, segments) -> dict[str, float]:
    """HitRate@100% / @150% of the detector's ``explain`` (where it has one) against the interpretation
    labels, beside the per-channel absolute z-score baseline (``z-score HitRate@...``)."""
    out = {
        f"z-score {k}": v for k, v in interpretation_scores(zscore_attribution(train, test), segments).items()
    }
    if hasattr(det, "explain"):
        out = {**interpretation_scores(det.explain(test), segments), **out}
    return out


def _ran_on(det: Any) -> dict[str, Any]:
    """Where a cell ran, so its times can be read: the host's CPU count, torch's thread count in the
    cell's process (one per core, or a share with ``--jobs``), the detector's device and the allocator
    setting (``diffad.runtime``)."""
    import torch

    return {
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(getattr(det, "device_", "cpu")),
        "malloc": allocator_setting(),
    }


def _epochs(det: Any) -> dict[str, int]:
    """How long a network detector trained, so that its fit time can be read: the epochs run (early
    stopping ends them before ``max_epochs``) and the best one, whose weights were kept. Empty for
    detectors without a training loop."""
    hist = (
        getattr(det, "history_", None) or {}
    )  # fit_loop's history plus best_epoch, for every network detector
    return (
        {"epochs": len(hist["train_loss"]), "best_epoch": int(hist["best_epoch"])}
        if hist.get("train_loss")
        else {}
    )


def _run_cell_safe(cfg, spec, dataset, seed, out) -> tuple[dict | None, str | None]:
    try:
        return run_cell(cfg, spec, dataset, seed, out), None
    except Exception:  # a failing cell is reported and the others go on
        return None, traceback.format_exc()


def _cell_task(cfg, spec, dataset, seed, out, threads: int) -> tuple[dict | None, str | None]:
    """One cell on a Dask worker (:mod:`diffad.parallel`): the cores shared between the workers."""
    worker_setup(threads)
    return _run_cell_safe(cfg, spec, dataset, seed, out)


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """Parameters as a cell's ``config.json`` stores them (JSON values; others as text)."""
    return json.loads(json.dumps(values, default=str))


def _plain_params(det: Any) -> dict[str, Any]:
    return _plain(det.get_params())


def _check_finished_settings(cfg: BenchConfig, results: Path, finished: list[Cell]) -> None:
    """A finished cell is only skipped if it ran with the detector settings the config resolves to now
    (a changed preset or default would otherwise mix two detectors under one name)."""
    stale: list[str] = []
    for spec, dataset, seed in finished:
        path = cell_dir(results, cfg.name, spec.name, dataset, seed) / "config.json"
        then = json.loads(path.read_text()).get("params", {}) if path.is_file() else {}
        det = spec.build(seed)
        now = _plain_params(det)
        # a parameter added since the cell ran is taken at the value that behaves as before it existed: its
        # class default, or the detector's _params_before where the default changed the behaviour
        then = {**_plain_params(type(det)()), **_plain(type(det)._params_before), **then}
        diff = sorted(k for k in set(then) | set(now) if then.get(k) != now.get(k))
        if diff:
            stale.append(
                f"{spec.name}/{dataset}/{seed} ({', '.join(f'{k}: {then.get(k)!r} then, {now.get(k)!r} now' for k in diff[:3])})"
            )
    if stale:
        raise ConfigError(
            f"run {cfg.name!r}: {len(stale)} finished cell(s) ran with other detector settings than the config gives "
            f"now, e.g. {stale[0]}. Pin the old settings in the config's params, use a new run name, or delete "
            f"those cell folders under {results / cfg.name} to recompute them."
        )


def run_bench(
    cfg: BenchConfig,
    results: str | Path = "results",
    jobs: int = 1,
    verbose: bool = True,
    *,
    client: Any = None,
    scheduler: str | None = None,
) -> dict[str, Any]:
    """Run every unfinished cell. Returns counts and errors.

    ``jobs`` > 1 runs the cells as tasks on a ``dask.distributed`` cluster (:mod:`diffad.parallel`, the
    ``fleet`` extra): a new ``LocalCluster`` of ``jobs`` processes sharing the cores, or ``client`` /
    the cluster at ``scheduler`` (one torch thread a task there).

    Finished cells are skipped after checking that they ran with the settings the config resolves to
    now (:class:`~diffad.ConfigError` otherwise)."""
    results = Path(results)
    cells = plan(cfg)
    done = [c for c in cells if (cell_dir(results, cfg.name, c[0].name, c[1], c[2]) / "done.json").is_file()]
    _check_finished_settings(cfg, results, done)
    todo = [c for c in cells if c not in done]
    errors: dict[str, str] = {}
    bar = tqdm(
        total=len(cells),
        initial=len(cells) - len(todo),
        desc=f"bench {cfg.name}",
        disable=not verbose,
        unit="cell",
    )
    if jobs <= 1 and client is None and scheduler is None:
        for spec, dataset, seed in todo:
            bar.set_postfix_str(f"{spec.name} {dataset} seed {seed}")
            _, err = _run_cell_safe(
                cfg, spec, dataset, seed, cell_dir(results, cfg.name, spec.name, dataset, seed)
            )
            if err:
                errors[f"{spec.name}/{dataset}/{seed}"] = err
            bar.update()
    else:  # one Dask task a cell: the executor of diffad fleet (diffad.parallel)
        local = client is None and scheduler is None
        threads = max(1, (os.cpu_count() or 1) // max(1, jobs)) if local else 1
        with dask_client(client, max(1, jobs), scheduler, threads, what="bench --jobs") as c:
            from distributed import as_completed

            futures = {
                c.submit(
                    _cell_task,
                    cfg,
                    s,
                    d,
                    seed,
                    cell_dir(results, cfg.name, s.name, d, seed),
                    threads,
                    pure=False,
                ): (s.name, d, seed)
                for s, d, seed in todo
            }
            for fut in as_completed(futures):
                _, err = fut.result()
                name, dataset, seed = futures[fut]
                if err:
                    errors[f"{name}/{dataset}/{seed}"] = err
                bar.set_postfix_str(f"last finished: {name} {dataset} seed {seed}")
                bar.update()
    bar.close()
    return {"cells": len(cells), "skipped": len(cells) - len(todo), "ran": len(todo), "errors": errors}
