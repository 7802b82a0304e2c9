"""Shape statistics of a model's generated masks against its few-shot training masks, per anomaly type.

    python benchmarks/imagegen_masks.py --model results/imagegen/synth0-faint
    python benchmarks/imagegen_masks.py --model results/imagegen/synth0-faint --retrain mask_steps=4000

Reads only the training masks (the few-shot split), never the held-out ones, so a mask model can be
chosen by these numbers without touching what the downstream evaluation scores. Per type: mean area
(pixels), mean number of connected components (8-connected), the *core share* (fraction of mask pixels
that survive one 3 x 3 binary erosion: 0 for one-pixel-wide lines, near 1 for large blobs) and the
*length* (the longest extent of the largest component, in pixels, along its principal axis).

``--retrain KEY=VALUE ...`` trains a new mask model with those configuration changes and reports its
masks as well, with the training time; the model folder is not changed, ``--save DIR`` writes the
model with the new mask model to ``DIR`` (with the folder's ``data.json``, so ``diffad imagegen
evaluate --model DIR`` works on it).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from diffad.config import parse_assignments
from diffad.imagegen import AnomalyDiffusion
from diffad.imagegen.data import model_split


def shape_stats(masks: np.ndarray) -> dict[str, float]:
    """Mean area, components, core share and length of binary masks (n, H, W)."""
    area, comps, core, length = [], [], [], []
    for m in np.asarray(masks) > 0:
        lab, n = ndimage.label(m, structure=np.ones((3, 3)))
        area.append(m.sum())
        comps.append(n)
        core.append(ndimage.binary_erosion(m, structure=np.ones((3, 3))).sum() / max(m.sum(), 1))
        if n:
            big = lab == (np.argmax(np.bincount(lab.ravel())[1:]) + 1)
            pts = np.argwhere(big).astype(float)
            pts -= pts.mean(axis=0)
            axis = np.linalg.svd(pts, full_matrices=False)[2][0] if len(pts) > 1 else np.zeros(2)
            proj = pts @ axis
            length.append(proj.max() - proj.min() + 1)
        else:
            length.append(0.0)
    return {
        "area": float(np.mean(area)),
        "components": float(np.mean(comps)),
        "core": float(np.mean(core)),
        "length": float(np.mean(length)),
    }


def report(name: str, masks: np.ndarray, kinds: list[str], types: list[str]) -> None:
    kinds = np.asarray(kinds)
    for k in types:
        s = shape_stats(masks[kinds == k])
        print(
            f"| {name} | {k} | {int((kinds == k).sum())} | {s['area']:.1f} | {s['components']:.2f} | {s['core']:.2f} | {s['length']:.1f} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--n-per-kind", type=int, default=64)
    ap.add_argument("--seed", type=int, default=1, help="mask sampling seed (evaluate draws with seed 1)")
    ap.add_argument("--retrain", nargs="*", default=None, metavar="KEY=VALUE")
    ap.add_argument("--save", type=Path, default=None, help="with --retrain: write the retrained model here")
    args = ap.parse_args()
    gen = AnomalyDiffusion.load(args.model, verbose=False)
    split = model_split(args.model, os.environ.get("DIFFAD_DATA"))
    kinds = [k for k in gen.kinds_ for _ in range(args.n_per_kind)]
    print("| masks | type | n | area | components | core share | length |\n|---|---|---|---|---|---|---|")
    report("training", split.train_masks, split.train_kinds, gen.kinds_)
    report("generated", gen.generate_masks(kinds, seed=args.seed), kinds, gen.kinds_)
    if args.retrain is not None:
        gen.config = dataclasses.replace(gen.config, **parse_assignments(args.retrain, "--retrain"))
        t0 = time.perf_counter()
        gen.fit_masks(split.train_masks, split.train_kinds)
        label = "retrained (" + ", ".join(args.retrain) + f"; {time.perf_counter() - t0:.0f} s)"
        report(label, gen.generate_masks(kinds, seed=args.seed), kinds, gen.kinds_)
        if args.save is not None:
            gen.save(args.save)
            shutil.copyfile(args.model / "data.json", args.save / "data.json")


if __name__ == "__main__":
    main()
