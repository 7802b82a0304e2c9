"""How hard a generated defect set is at a given defect contrast: the segmenter of
``diffad imagegen evaluate`` trained on the real few-shot defects alone and with crop-and-paste
pairs, scored on the held-out images. No generator is trained: this picks a contrast at which
augmentations can be ranked (the real defects alone must leave room).

    python benchmarks/imagegen_contrast.py --contrast 0.3 0.12 0.07

Prints pixel AUROC and AP per contrast (segmenter seed 0 by default).
"""

from __future__ import annotations

import argparse
import time

from diffad.data.synthetic import make_defect_images
from diffad.imagegen.data import few_shot_split
from diffad.imagegen.evaluate import crop_paste, downstream


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--contrast", type=float, nargs="+", default=[1.0, 0.3, 0.12, 0.07])
    ap.add_argument("--seed", type=int, default=0, help="Seed of the image set (SYNTH-IMG/<seed>).")
    ap.add_argument("--seg-seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--seg-steps", type=int, default=600)
    ap.add_argument("--n-pairs", type=int, default=256, help="Crop-and-paste pairs.")
    args = ap.parse_args()
    print("| contrast | segmenter trained on | pixel AUROC | pixel AP | seconds for the contrast |")
    print("|---|---|---|---|---|")
    for c in args.contrast:
        split = few_shot_split(make_defect_images(contrast=c, seed=args.seed), 1 / 3)
        t0 = time.perf_counter()
        res = downstream(split, {"real few-shot only": {"images": split.train_images[:0], "masks": split.train_masks[:0]},
                                 "crop-and-paste": crop_paste(split, args.n_pairs, seed=0)},
                         seeds=tuple(args.seg_seeds), steps=args.seg_steps)
        for name, r in res.items():
            print(f"| {c:g} | {name} | {r['mean']['pixel_AUROC']:.3f} | {r['mean']['pixel_AP']:.3f} | {time.perf_counter() - t0:.0f} |")


if __name__ == "__main__":
    main()
