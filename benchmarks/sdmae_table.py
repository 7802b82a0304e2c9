"""Markdown table of one or more `diffad experiment sdmae` results folders (their records pooled,
a configuration/dataset/seed counted once): mean ± std over datasets and seeds.

    python benchmarks/sdmae_table.py results/sdmae/<timestamp> [results/sdmae/<timestamp> ...]
"""

import json
import sys
from pathlib import Path

import numpy as np

KEYS = ("AUC-ROC", "AUC-PR", "VUS-PR", "Standard-F1", "Affiliation-F")


def main(folders: list[str]) -> None:
    pooled: dict[tuple, dict] = {}
    for folder in folders:
        for r in json.loads((Path(folder) / "results.json").read_text())["records"]:
            pooled.setdefault((r["config"], r["dataset"], r["seed"]), r)
    records = list(pooled.values())
    print("| configuration | runs | " + " | ".join(KEYS) + " | fit s |")
    print("|---|---|" + "---|" * (len(KEYS) + 1))
    for name in dict.fromkeys(r["config"] for r in records):
        sel = [r for r in records if r["config"] == name]
        cells = [
            f"{np.mean(v):.3f} ± {np.std(v):.3f}" for v in ([r["metrics"][k] for r in sel] for k in KEYS)
        ]
        print(
            f"| {name} | {len(sel)} | " + " | ".join(cells) + f" | {np.mean([r['fit_s'] for r in sel]):.0f} |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
