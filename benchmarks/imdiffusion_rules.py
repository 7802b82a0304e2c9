"""ImDiffusion's error rule: how the per-channel imputation errors become one score.

    python benchmarks/imdiffusion_rules.py --data-dir ../shared/data \
        --datasets SMD/machine-1-2 SMD/machine-1-5 SMD/machine-2-1 SMD/machine-2-4

One fit of the ``fast`` preset per dataset (``--seed``, default 0: the same fit as a ``diffad bench``
cell of that preset and seed); its squared imputation errors of every ensemble step and channel, on
the validation tail and on the test series, are kept in ``--errors-dir`` (a second run reuses them).
Every rule then scores the same imputations:

- ``error_norm``: ``channel`` divides each channel's error by its mean on the validation tail (per
  ensemble step), ``none`` keeps the raw squared error of the min-max scaled values;
- ``error_reduce``: ``max`` or ``sum`` over channels;
- with ``--floor``, also ``channel-floor``: the ``channel`` divisors, none below 0.1 x their median over
  the channels (per step), so that near-constant channels cannot dominate the score (the detector's
  ``error_floor=0.1``); ``--norms`` picks the normalisations, ``--reduces`` the reductions;
- ``quantile``: divisors = each step's and channel's 99th percentile of the validation errors (floored
  as ``channel-floor``'s); ``tail``: each error replaced by its surprise under the validation errors of
  its step and channel, -log((1 + #{validation errors >= e}) / (n_val + 1)), so that every channel has
  the same distribution of scores on normal data whatever its scale and tails;
- with ``--smooth K ...``, also each step's reduced error averaged over the last K points (a trailing
  mean, on the validation tail before its vote thresholds and on the test series alike).

``--baselines`` scores k-NN, PCA and Isolation Forest (their defaults, ``random_state=--seed``) on the
same datasets in the same run; ``--json`` keeps every row; ``--fit-only`` fills ``--errors-dir`` without
scoring anything (so that fits can run before the rule is chosen).

The score is the detector's ``decision_function``: per step the reduced error divided by that step's
vote threshold (fitted on the validation tail with ``vote_ratio``), averaged over the steps. Prints
AUC-PR and VUS-PR (window 100) per dataset and rule, and their means: honest, threshold-free metrics.
Choosing a rule by these numbers uses test labels, so choose on some datasets and confirm on others.
The last column is what ``diffad bench`` reports as the paper-protocol PA-F1 for a detector with that
``error_norm`` (it uses the test labels; the paper fixes the reduction per dataset, max over channels for
SMD and sum for SMAP/MSL, so the two rows of one ``error_norm`` share it).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from diffad import ImDiffusionDetector
from diffad.bench import DetectorSpec
from diffad.data import load_dataset
from diffad.data.series import time_split
from diffad.detectors.imdiffusion import (
    ensemble_score,
    error_scale,
    reduce_channels,
    step_thresholds,
    trailing_mean,
)
from diffad.metrics import auc_pr, vus
from diffad.protocols import paper_imdiffusion_rule, paper_vote

BASELINES = [  # built as a `diffad bench` cell builds them (random_state = the seed where they take one)
    DetectorSpec("kNN", "KNNDetector"),
    DetectorSpec("PCA", "PCADetector"),
    DetectorSpec("IsolationForest", "IsolationForestDetector"),
]
FLOOR = 0.1  # --floor: the "channel-floor" rules use error_floor=FLOOR


def raw_errors(
    name: str, data_dir: str | None, seed: int, errors_dir: Path
) -> tuple[np.ndarray, np.ndarray, Any, float]:
    """(validation-tail errors (R, n_val, K), test errors (R, n, K), the dataset, fit + score seconds)."""
    path = errors_dir / f"{name.replace('/', '_')}-seed{seed}.npz"
    ds = load_dataset(name, data_dir)
    if path.exists():
        z = np.load(path)
        return z["val"], z["test"], ds, float(z["seconds"])
    t0 = time.perf_counter()
    det = ImDiffusionDetector.fast(random_state=seed).fit(ds.train)
    scale = det.error_scale_[:, None, :]
    val = det.step_errors(time_split(ds.train, det.validation_fraction)[1], reduce="none") * scale
    test = det.step_errors(ds.test, reduce="none") * scale
    seconds = time.perf_counter() - t0
    errors_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, val=val.astype(np.float32), test=test.astype(np.float32), seconds=seconds)
    return val, test, ds, seconds


def tail_surprise(val: np.ndarray, errors: np.ndarray) -> np.ndarray:
    """(R, n, K) errors -> -log((1 + #{validation errors of the step and channel >= e}) / (n_val + 1)):
    the surprise of each error under its own step's and channel's errors on the validation tail (NaN
    stays NaN; n_val counts the observed validation errors)."""
    out = np.full(errors.shape, np.nan)
    for r in range(errors.shape[0]):
        for k in range(errors.shape[2]):
            v = np.sort(val[r, :, k][np.isfinite(val[r, :, k])])
            e = errors[r, :, k]
            ok = np.isfinite(e)
            at_least = len(v) - np.searchsorted(v, e[ok], side="left")
            out[r, ok, k] = -np.log((1.0 + at_least) / (len(v) + 1.0))
    return out


def quantile_scale(val: np.ndarray, q: float = 99.0) -> np.ndarray:
    """(R, K) divisors: each step's and channel's q-th percentile of the validation errors, none below
    FLOOR x their median over the channels of the step (as the floored mean divisors)."""
    scale = np.maximum(np.nanpercentile(val, q, axis=1), 1e-12)
    return np.maximum(scale, FLOOR * np.median(scale, axis=1, keepdims=True))


def per_channel(val: np.ndarray, test: np.ndarray, norm: str) -> tuple[np.ndarray, np.ndarray]:
    """The validation tail's and the test series' errors (R, n, K) under one normalisation."""
    if norm == "tail":
        return tail_surprise(val, val), tail_surprise(val, test)
    if norm == "quantile":
        scale = quantile_scale(val)
    else:
        scale = error_scale(val, "channel", FLOOR) if norm == "channel-floor" else error_scale(val, norm)
    return val / scale[:, None, :], test / scale[:, None, :]


def reduced(
    normalised: tuple[np.ndarray, np.ndarray], reduce: str, smooth: int = 1
) -> tuple[np.ndarray, ...]:
    """Per-step errors (R, n) of the validation tail and the test series from their ``per_channel`` errors."""
    return tuple(trailing_mean(reduce_channels(e, reduce), smooth) for e in normalised)


def rule_score(
    normalised: tuple[np.ndarray, np.ndarray], reduce: str, vote_ratio: float, smooth: int = 1
) -> np.ndarray:
    v, t = reduced(normalised, reduce, smooth)
    return ensemble_score(t, step_thresholds(v, vote_ratio))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument(
        "--datasets",
        nargs="+",
        metavar="NAME",
        default=["SMD/machine-1-2", "SMD/machine-1-5", "SMD/machine-2-1", "SMD/machine-2-4"],
        help="registered dataset names (`diffad data list`), e.g. SMD/machine-1-2 or MSL",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--errors-dir", default="results/imdiffusion-rules")
    ap.add_argument(
        "--floor",
        action="store_true",
        help=f"also score 'channel-floor': channel divisors floored at {FLOOR} x their per-step median",
    )
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    ap.add_argument(
        "--fit-only",
        action="store_true",
        help="fit and keep the errors of each dataset, score nothing (to fill --errors-dir before choosing)",
    )
    ap.add_argument(
        "--norms",
        nargs="+",
        default=["channel", "none"],
        choices=["channel", "none", "channel-floor", "quantile", "tail"],
    )
    ap.add_argument("--reduces", nargs="+", default=["max", "sum"], choices=["max", "sum"])
    ap.add_argument(
        "--smooth",
        nargs="+",
        type=int,
        default=[1],
        help="trailing means over time of each step's reduced error to score (1 = none)",
    )
    ap.add_argument(
        "--baselines", action="store_true", help="also score k-NN, PCA and Isolation Forest (seed --seed)"
    )
    ap.add_argument("--json", default=None, help="write every row to this JSON file")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.fit_only:
        for m in args.datasets:
            seconds = raw_errors(m, args.data_dir, args.seed, Path(args.errors_dir))[3]
            print(f"{m} seed {args.seed}: errors kept ({seconds:.0f} s fit + score)", flush=True)
        return
    norms = list(dict.fromkeys(args.norms + (["channel-floor"] if args.floor else [])))
    preset = ImDiffusionDetector.fast()
    vote_ratio = preset.vote_ratio
    rows: dict[str, list[tuple[float, float, float]]] = {}
    records = []
    print(
        "| dataset | rule | AUC-PR | VUS-PR | fit + score s | PA-F1 [paper-protocol (uses test labels)] |\n"
        "|---|---|---|---|---|---|",
        flush=True,
    )
    for m in args.datasets:
        val, test, ds, seconds = raw_errors(m, args.data_dir, args.seed, Path(args.errors_dir))
        y = ds.test_labels
        paper_reduce, paper_r = paper_imdiffusion_rule(m, vote_ratio)
        paper_reduce = paper_reduce or preset.error_reduce
        results = []
        for norm in norms:  # each normalisation once per dataset, one at a time (SMAP's errors are large)
            normalised = per_channel(val, test, norm)
            # the paper's vote fixes the reduction per dataset: PA-F1 depends on the normalisation and smoothing
            pa = {
                k: paper_vote(y, reduced(normalised, paper_reduce, k)[1], paper_r)["PA-F1"]
                for k in args.smooth
            }
            results += [
                (rule_name(norm, reduce, k), rule_score(normalised, reduce, vote_ratio, k), pa[k])
                for reduce in args.reduces
                for k in args.smooth
            ]
            del normalised
        for spec in BASELINES if args.baselines else []:
            det = spec.build(args.seed)
            results.append((spec.name, det.fit(ds.train).decision_function(ds.test), float("nan")))
        for name, score, pa in results:
            pr, vpr = auc_pr(y, score), vus(y, score, 100)[1]
            rows.setdefault(name, []).append((pr, vpr, pa))
            records.append(
                {"dataset": m, "seed": args.seed, "rule": name, "AUC-PR": pr, "VUS-PR": vpr, "PA-F1": pa}
            )
            print(f"| {m} | {name} | {pr:.3f} | {vpr:.3f} | {seconds:.0f} | {pa:.3f} |", flush=True)
    for name, vals in rows.items():
        pr, vpr, pa_f1 = np.mean(vals, axis=0)
        print(f"| mean | {name} | {pr:.3f} | {vpr:.3f} | | {pa_f1:.3f} |")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(records, indent=1) + "\n")


def rule_name(norm: str, reduce: str, smooth: int) -> str:
    return f"{norm}, {reduce}" + (f", trailing {smooth}" if smooth > 1 else "")


if __name__ == "__main__":
    main()
