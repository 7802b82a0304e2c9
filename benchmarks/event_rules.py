"""Choose the events' merging rules (``merge_gap``, ``min_duration``) on recorded bench cells.

    python benchmarks/event_rules.py --data-dir ../shared/data \
        --cells benchmarks/results/imdiffusion-fast2 --choose-on machine-1-2 machine-1-5 machine-2-1 machine-2-4

Reads every cell's decisions (``preds.npy``, kept beside ``done.json`` by ``diffad bench``) with the
test labels of its dataset, and scores each (merge_gap, min_duration) of the grid by the composite F1
of ``diffad.events.event_f1`` (segment recall x the point precision of the events as intervals). The
pair with the highest mean composite F1 over the detectors and the ``--choose-on`` machines (ties: the
smaller merge_gap, then the smaller min_duration) is the choice; the same pair is then reported on
every other dataset found in the cells. (The plain overlap event-F1 is printed too; it was the first
criterion and proved degenerate: it rises with merge_gap to the grid's edge, since one event over the
whole series scores 1.)
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from diffad.data import load_dataset
from diffad.events import EventRules, event_f1

GAPS = (0, 1, 2, 5, 10, 20, 50)
DURATIONS = (1, 2, 3, 5, 10)


def cells(folders: list[str]) -> list[tuple[str, str, np.ndarray]]:
    """(detector, dataset, preds) of every finished cell with its decisions on disk."""
    out = []
    for folder in folders:
        for done in sorted(Path(folder).rglob("done.json")):
            preds = done.parent / "preds.npy"
            if preds.is_file():
                d = json.loads(done.read_text())
                out.append((d["detector"], d["dataset"], np.load(preds)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--cells", nargs="+", required=True, help="bench run folders")
    ap.add_argument("--choose-on", nargs="+", required=True, help="entity names (e.g. machine-1-2)")
    ap.add_argument("--skip", nargs="*", default=["Random"], help="detectors left out")
    args = ap.parse_args()
    found = [c for c in cells(args.cells) if c[0] not in args.skip]
    labels = {ds: load_dataset(ds, args.data_dir).test_labels for ds in {c[1] for c in found}}
    grid = list(itertools.product(GAPS, DURATIONS))
    table: dict[tuple[int, int], list[dict]] = {g: [] for g in grid}
    for det, ds, preds in found:
        for gap, dur in grid:
            r = event_f1(labels[ds], preds, EventRules(merge_gap=gap, min_duration=dur))
            table[(gap, dur)].append({"detector": det, "dataset": ds, **r})

    def mean(rows: list[dict], key: str, choose: bool) -> float:
        sel = [r[key] for r in rows if any(r["dataset"].endswith(m) for m in args.choose_on) == choose]
        return float(np.mean(sel)) if sel else float("nan")

    key = "composite_F1"
    best = max(grid, key=lambda g: (mean(table[g], key, True), -g[0], -g[1]))
    print(
        "| merge_gap | min_duration | composite F1 (choose) | composite F1 (confirm) | event-F1 (choose) "
        "| events (choose) | one-point share (choose) |"
    )
    print("|---|---|---|---|---|---|---|")
    for g in grid:
        mark = " **(chosen)**" if g == best else ""
        print(
            f"| {g[0]} | {g[1]}{mark} | {mean(table[g], key, True):.3f} | {mean(table[g], key, False):.3f} "
            f"| {mean(table[g], 'event_F1', True):.3f} | {mean(table[g], 'events', True):.1f} "
            f"| {mean(table[g], 'one_point_share', True):.2f} |"
        )
    print(
        f"\ncells: {len(found)} ({sorted({c[0] for c in found})}); chosen: merge_gap={best[0]}, min_duration={best[1]}"
    )
    base = (0, 1)
    for name, g in (("as flagged (0, 1)", base), ("chosen", best)):
        print(
            f"{name}: composite F1 choose {mean(table[g], key, True):.3f}, confirm {mean(table[g], key, False):.3f}"
        )


if __name__ == "__main__":
    main()
