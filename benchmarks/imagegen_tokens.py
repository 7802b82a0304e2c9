"""Does each anomaly type's condition steer the frozen prior? Signed defect contrast, per type.

    python benchmarks/imagegen_tokens.py --model results/imagegen/synth0-faint
    python benchmarks/imagegen_tokens.py --model results/imagegen/synth0-faint \\
        --retrain spatial_embedding=typed --save results/imagegen/synth0-faint-typed

Reads only the few-shot *training* defects of the model's split, never the held-out ones. Prints the
signed defect contrast (:func:`diffad.imagegen.evaluate.defect_contrast` with ``signed=True``: mean
colour of the mask minus a 2-pixel ring around it, 0..1 scale, positive = brighter) of

- the real training defects of each type;
- the prior's prediction of the clean image from noised training defects at diffusion steps
  ``--steps``, once with each type's condition (rows) for the defects of each type (columns), with
  the true masks: if the rows are alike, the type's tokens do not steer the prior; and, for
  reference, with the prior's own condition (the defective image's layout tokens, and none);
- generated pairs (``--n-per-type`` per type), with and without attention re-weighting, on drawn
  masks, on the type's training masks (which takes the mask model out: a type whose generated
  contrast is wrong even there was not learned by the anomaly stage) and on the training masks
  moved by ``--shift`` pixels down and right (wrapping round): a type that is right on its training
  masks but wrong when they move has learned where its few defects lie, not how they look. Each
  mask set also has the contrast of the normal images being edited under the same masks: what the
  contrast is when nothing is painted, and of the prior alone inpainting them (its own condition of
  each edited normal image, no anomaly tokens, no re-weighting): what the sampler paints unasked.

``--sample KEY=VALUE ...`` changes the sampling settings for the run (e.g. ``resample=4``).
``--retrain KEY=VALUE ...`` refits the anomaly stage (embeddings and spatial encoder; the prior and
the mask model are kept) with those configuration changes first, and ``--save DIR`` writes that model
to ``DIR`` with the folder's ``data.json`` (so ``diffad imagegen evaluate --model DIR`` works on it).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from diffad.config import parse_assignments
from diffad.imagegen import AnomalyDiffusion
from diffad.imagegen.data import model_split
from diffad.imagegen.evaluate import signed_contrast_by_kind
from diffad.imagegen.generator import to_unit
from diffad.imagegen.models import make_scheduler

PRIOR_LAYOUT = "prior: layout of the defective image"
PRIOR_NO_LAYOUT = "prior: no layout"


@torch.no_grad()
def teacher_forced(
    gen: AnomalyDiffusion,
    images: np.ndarray,
    masks: np.ndarray,
    kinds: list[str],
    steps: list[int],
    seed: int = 0,
) -> dict[int, dict[str, dict[str, float]]]:
    """{step: {defect type: {condition type: mean signed contrast of the predicted clean image}}}."""
    x = to_unit(images).to(gen.device_)
    m = torch.as_tensor(masks > 0, dtype=torch.float32, device=gen.device_)[:, None]
    alpha_bar = make_scheduler(gen.config).alphas_cumprod.to(gen.device_)
    g = torch.Generator(device=gen.device_).manual_seed(seed)
    out: dict[int, dict[str, dict[str, float]]] = {}
    for t in steps:
        noise = torch.randn(x.shape, generator=g, device=gen.device_)
        a = alpha_bar[t]
        xt = a.sqrt() * x + (1 - a).sqrt() * noise
        conditions = {
            cond_kind: gen.conditioner_(
                torch.full((len(x),), gen.kinds_.index(cond_kind), device=gen.device_), m, x
            )
            for cond_kind in gen.kinds_
        }
        # the prior's own condition, for reference: the layout of the defective image itself, and no layout
        conditions[PRIOR_LAYOUT] = gen.prior_condition_(x)
        conditions[PRIOR_NO_LAYOUT] = gen.prior_condition_(
            x, torch.zeros(len(x), dtype=torch.bool, device=gen.device_)
        )
        predicted = {}
        for name, cond in conditions.items():
            eps = gen.prior_(xt, torch.tensor(t, device=gen.device_), cond).sample
            x0 = ((xt - (1 - a).sqrt() * eps) / a.sqrt()).clamp(-1, 1)
            predicted[name] = (
                ((x0 + 1) * 127.5).cpu().numpy(),
                masks,
                kinds,
            )  # 0..255, as defect_contrast reads
        out[t] = signed_contrast_by_kind(predicted, gen.kinds_)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--steps", type=int, nargs="+", default=[50, 150, 300, 500])
    ap.add_argument("--n-per-type", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--shift", type=int, default=5, help="pixels the training masks are moved by (down and right)"
    )
    ap.add_argument("--retrain", nargs="*", default=[], metavar="KEY=VALUE")
    ap.add_argument(
        "--sample",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="sampling settings for this run (sample_steps, mask_sample_steps, resample, guidance), e.g. resample=4",
    )
    ap.add_argument("--save", type=Path)
    args = ap.parse_args()
    if args.save and not args.retrain:
        ap.error("--save needs --retrain")
    split = model_split(args.model)
    gen = AnomalyDiffusion.load(args.model)
    sampling = parse_assignments(args.sample, "--sample")
    gen.config.with_sampling(sampling)  # refuses a training setting before any work
    if args.retrain:
        gen.config = dataclasses.replace(gen.config, **parse_assignments(args.retrain, "--retrain"))
        t0 = time.perf_counter()
        gen.fit_anomaly(split.train_images, split.train_masks, split.train_kinds)
        print(
            f"anomaly stage refitted with {' '.join(args.retrain)}: {time.perf_counter() - t0:.0f} s "
            f"({torch.get_num_threads()} torch threads, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')})"
        )
        if args.save:
            gen.save(args.save)
            shutil.copy(args.model / "data.json", args.save / "data.json")
            print(f"saved to {args.save}")
    gen.config = gen.config.with_sampling(sampling)  # for this run only: after any --save
    kinds = list(split.train_kinds)
    want = [k for k in gen.kinds_ for _ in range(args.n_per_type)]
    drawn = gen.generate_masks(want, seed=args.seed + 1)
    # the training masks themselves (each type's masks in turn), which takes the mask model out, and moved
    on_train = np.concatenate(
        [np.resize(np.flatnonzero(np.asarray(kinds) == k), args.n_per_type) for k in gen.kinds_]
    )
    train_masks = split.train_masks[on_train]
    moved = np.roll(train_masks, (args.shift, args.shift), axis=(1, 2))
    sets = {"real few-shot training defects": (split.train_images, split.train_masks, kinds)}
    for where, masks in [
        ("drawn masks", drawn),
        ("the training masks", train_masks),
        (f"the training masks moved by {args.shift} px", moved),
    ]:
        for reweight in (True, False):
            out = gen.generate(
                split.normal, len(want), kinds=want, masks=masks, seed=args.seed, reweight=reweight
            )
            name = f"generated on {where} ({args.n_per_type} per type{', re-weighting' if reweight else ''})"
            sets[name] = (out["images"], out["masks"], want)
        # nothing painted: the same normal images under the same masks
        sets[f"the normal images under {where}"] = (split.normal[out["normal_index"]], out["masks"], want)
        # the prior alone: inpainting with its own condition of each edited normal image, no anomaly tokens
        with torch.no_grad():
            own = gen.prior_condition_(to_unit(split.normal[out["normal_index"]]).to(gen.device_))
        plain = gen.generate(
            split.normal, len(want), kinds=want, masks=masks, seed=args.seed, reweight=False, conditions=own
        )
        assert np.array_equal(plain["normal_index"], out["normal_index"])
        sets[f"the prior's own condition of the edited normal image on {where}"] = (
            plain["images"],
            plain["masks"],
            want,
        )
    rows = signed_contrast_by_kind(sets, gen.kinds_)
    tf = teacher_forced(gen, split.train_images, split.train_masks, kinds, args.steps, seed=args.seed)

    def line(name: str, values: dict[str, float]) -> str:
        return f"| {name} | " + " | ".join(f"{values[k]:+.4f}" for k in gen.kinds_) + " |"

    print("\nsigned defect contrast (mask minus its surroundings, 0..1 scale; + brighter)")
    print("\n| defects | " + " | ".join(gen.kinds_) + " |\n|---|" + "---|" * len(gen.kinds_))
    print(
        line(
            "real few-shot training defects",
            {k: rows[k]["real few-shot training defects"] for k in gen.kinds_},
        )
    )
    for t, by_kind in tf.items():
        for cond in [*gen.kinds_, PRIOR_LAYOUT, PRIOR_NO_LAYOUT]:
            print(
                line(
                    f"predicted clean image, t = {t}, {cond} condition",
                    {k: by_kind[k][cond] for k in gen.kinds_},
                )
            )
    for name in list(sets)[1:]:
        print(line(name, {k: rows[k][name] for k in gen.kinds_}))
    with torch.no_grad():
        m = torch.as_tensor(split.train_masks > 0, dtype=torch.float32, device=gen.device_)[:, None]
        x = to_unit(split.train_images).to(gen.device_)
        cond = gen.conditioner_(torch.tensor([gen.kinds_.index(k) for k in kinds], device=gen.device_), m, x)
        c0 = gen.conditioner_.n_normal
        norms = {
            "normal (e_n)": cond[:, :c0],
            "anomaly (e_a)": cond[:, c0 : c0 + gen.conditioner_.n_anomaly],
            "spatial (e_s)": cond[:, c0 + gen.conditioner_.n_anomaly :],
        }
    print(
        "\ntoken norms over the training defects (median, max): "
        + "; ".join(
            f"{name} {v.norm(dim=-1).median():.2f}, {v.norm(dim=-1).max():.2f}" for name, v in norms.items()
        )
    )
    spread = max(
        max(v[c] for c in gen.kinds_) - min(v[c] for c in gen.kinds_)
        for by_kind in tf.values()
        for v in by_kind.values()
    )
    print(f"\nlargest change of a defect type's predicted contrast between conditions: {spread:.4f}")


if __name__ == "__main__":
    main()
