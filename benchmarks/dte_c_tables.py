"""Tables of the DTE-C small-set work: honest AUC-ROC by set (mean over the seeds each cell has), means
over the development half, the confirmation half and the eight small sets, from recorded bench runs.

    python benchmarks/dte_c_tables.py benchmarks/results/dte-c-dev benchmarks/results/dte-c-confirm \\
        --extra "DTE-C=benchmarks/results/adbench-softmax/DTE-C"

``--extra NAME=FOLDER`` adds the cells of one detector folder of another run under NAME where the runs
have none (for example seed 0 of the DTE-C of before, recorded in adbench-softmax). A mean is printed only over the sets and seeds
every detector in the table has, and says how many cells it covers.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from diffad.bench import collect
from diffad.bench.runner import cell_dir

SMALL = (
    "15_Hepatitis",
    "18_Ionosphere",
    "21_Lymphography",
    "37_Stamps",
    "39_vertebral",
    "42_WBC",
    "43_WDBC",
    "46_WPBC",
)


def _cells(run: Path, table: dict, name: str | None = None, folder: Path | None = None) -> None:
    """Add the finished cells of ``run``; with ``name``, only those under the detector ``folder``, under
    that name and only where the table has none."""
    for c in collect(run):
        key = (c["dataset"].split("/", 1)[-1], int(c["seed"]))
        if name is None:
            table[c["detector"]][key] = c["honest"]["AUC-ROC"]
        elif cell_dir(run.parent, run.name, c["detector"], c["dataset"], c["seed"]).parent.parent == folder:
            table[name].setdefault(key, c["honest"]["AUC-ROC"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--extra", action="append", default=[], help="NAME=FOLDER of one detector's cells")
    ap.add_argument("--only", default=None, help="comma-separated detector names to show (default: all)")
    a = ap.parse_args()
    table: dict[str, dict[tuple[str, int], float]] = defaultdict(dict)
    groups: dict[str, set[str]] = {}
    for run in a.runs:
        one: dict[str, dict[tuple[str, int], float]] = defaultdict(dict)
        _cells(run, one)
        groups[f"sets of {run.name}"] = {k[0] for cells in one.values() for k in cells}
        for d, cells in one.items():
            table[d].update(cells)
    for spec in a.extra:
        name, folder = spec.split("=", 1)
        _cells(Path(folder).parent, table, name, Path(folder))
    dets = sorted(table) if a.only is None else [d for d in a.only.split(",") if d in table]
    sets = sorted({k[0] for d in dets for k in table[d]}, key=lambda s: int(s.split("_")[0]))
    groups["small sets"] = set(SMALL)
    groups["all sets"] = set(sets)
    print("AUC-ROC, mean over seeds (cells in brackets)\n")
    print("| set | " + " | ".join(dets) + " |")
    print("|---|" + "---|" * len(dets))
    for s in sets:
        vals = []
        for d in dets:
            v = [x for (ss, _), x in table[d].items() if ss == s]
            vals.append(f"{np.mean(v):.3f} ({len(v)})" if v else "-")
        print(f"| {s} | " + " | ".join(vals) + " |")
    print("\nMeans over the cells every detector has\n")
    print("| group | cells | " + " | ".join(dets) + " |")
    print("|---|---|" + "---|" * len(dets))
    for label, members in groups.items():
        common = set.intersection(*[{k for k in table[d] if k[0] in members} for d in dets])
        if common:
            means = [np.mean([table[d][k] for k in common]) for d in dets]
            print(f"| {label} | {len(common)} | " + " | ".join(f"{m:.4f}" for m in means) + " |")


if __name__ == "__main__":
    main()
