"""How hard a generated defect set is at a given defect contrast: the segmenter of
``diffad imagegen evaluate`` trained on the real few-shot defects alone and with crop-and-paste
pairs, scored on the held-out images. No generator is trained: this picks a contrast at which
augmentations can be ranked (the real defects alone must leave room).

    python benchmarks/imagegen_contrast.py --contrast 0.3 0.12 0.07

Prints, per contrast, how strong the defects are (the change of each defect pixel from its texture,
largest over the colour channels, on a 0..1 scale; ``--strength-only`` stops there), then pixel AUROC
and AP (segmenter seed 0 by default).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from diffad.data.synthetic import IMAGE_DEFECT_KINDS, make_defect_images
from diffad.imagegen.data import few_shot_split
from diffad.imagegen.evaluate import crop_paste, downstream


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--contrast", type=float, nargs="+", default=[1.0, 0.3, 0.12, 0.07])
    ap.add_argument("--seed", type=int, default=0, help="Seed of the image set (SYNTH-IMG/<seed>).")
    ap.add_argument("--seg-seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--seg-steps", type=int, default=600)
    ap.add_argument("--n-pairs", type=int, default=256, help="Crop-and-paste pairs.")
    ap.add_argument("--strength-only", action="store_true", help="Only the defect-strength table.")
    args = ap.parse_args()
    print("| contrast | defect | median change | 99th percentile | largest |")
    print("|---|---|---|---|---|")
    full = make_defect_images(seed=args.seed)
    for c in (c for c in args.contrast if c < 1):  # at full strength there is nothing to compare with
        faint = make_defect_images(contrast=c, seed=args.seed)
        # the texture is the same in both: full - faint = (1 - c) (defect - texture), up to uint8 rounding
        change = np.abs(full.test.astype(float) - faint.test.astype(float)).max(axis=1) / 255 * c / (1 - c)
        for kind in IMAGE_DEFECT_KINDS:
            sel = np.asarray(full.test_kinds) == kind
            d = change[sel][full.test_masks[sel] > 0]
            print(f"| {c:g} | {kind} | {np.median(d):.3f} | {np.quantile(d, 0.99):.3f} | {d.max():.3f} |")
    if args.strength_only:
        return
    print("| contrast | segmenter trained on | pixel AUROC | pixel AP | seconds for the contrast |")
    print("|---|---|---|---|---|")
    for c in args.contrast:
        split = few_shot_split(make_defect_images(contrast=c, seed=args.seed), 1 / 3)
        t0 = time.perf_counter()
        res = downstream(
            split,
            {
                "real few-shot only": {"images": split.train_images[:0], "masks": split.train_masks[:0]},
                "crop-and-paste": crop_paste(split, args.n_pairs, seed=0),
            },
            seeds=tuple(args.seg_seeds),
            steps=args.seg_steps,
        )
        for name, r in res.items():
            print(
                f"| {c:g} | {name} | {r['mean']['pixel_AUROC']:.3f} | {r['mean']['pixel_AP']:.3f} | {time.perf_counter() - t0:.0f} |"
            )


if __name__ == "__main__":
    main()
