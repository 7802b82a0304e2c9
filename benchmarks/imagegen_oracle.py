"""Can any cross-attention condition make the frozen prior paint a defect? A per-defect oracle check.

    python benchmarks/imagegen_oracle.py --model results/imagegen/tire-a600 --kinds cut

Reads only the few-shot *training* defects of the model's split. For each training defect of the
chosen types, start from the condition the anomaly stage gives it and fit *every* token of that
condition freely, for that one image (no flips), with the anomaly stage's loss: the noise MSE on the
mask pixels, prior frozen. That is far more freedom than the anomaly stage has (it shares ``e_a``
across a type and computes ``e_s`` from the mask), so the fitted condition bounds what any condition
of this layout can do with this prior. Then generate on the defect's own mask, over ``--n`` normal
images, with the fitted condition and with the anomaly stage's, and print the signed defect contrast
(:func:`diffad.imagegen.evaluate.defect_contrast` with ``signed=True``; 0..1 scale, + brighter) of
each beside the real defect's, and the masked loss of each condition (and of the prior's own
condition, the defective image's layout) on one fixed set of noised copies of the defect.

If even the fitted condition leaves the generated defect far from the real one's contrast, no
condition of this layout steers this prior there: the limit is the frozen prior, not how the anomaly
stage is parametrised.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from diffad.imagegen import AnomalyDiffusion
from diffad.imagegen.data import model_split
from diffad.imagegen.evaluate import defect_contrast
from diffad.imagegen.generator import masked_noise_loss, to_unit
from diffad.imagegen.models import make_scheduler


def masked_loss(
    gen: AnomalyDiffusion,
    sched,
    x: torch.Tensor,
    m: torch.Tensor,
    cond: torch.Tensor,
    t: torch.Tensor,
    noise: torch.Tensor,
) -> torch.Tensor:
    """The anomaly stage's loss (noise MSE over the mask pixels) of ``cond`` on noised copies of ``x``."""
    b = len(t)
    xt = sched.add_noise(x.expand(b, -1, -1, -1), noise, t)
    pred = gen.prior_(xt, t, cond.expand(b, -1, -1)).sample
    return masked_noise_loss(pred, noise, m.expand(b, -1, -1, -1))


def fit_condition(
    gen: AnomalyDiffusion,
    x: torch.Tensor,
    m: torch.Tensor,
    start: torch.Tensor,
    steps: int,
    lr: float,
    batch: int,
    seed: int,
) -> tuple[torch.Tensor, list[float]]:
    """Every token of one condition, fitted to one defect with the prior frozen."""
    sched = make_scheduler(gen.config)
    cond = start.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([cond], lr=lr)
    g = torch.Generator(device=gen.device_).manual_seed(seed)
    losses = []
    for _ in range(steps):
        t = torch.randint(0, gen.config.train_timesteps, (batch,), generator=g, device=gen.device_)
        noise = torch.randn((batch, *x.shape[1:]), generator=g, device=gen.device_)
        loss = masked_loss(gen, sched, x, m, cond, t, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return cond.detach(), losses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--kinds", nargs="*", help="defect types to check (default: all)")
    ap.add_argument("--steps", type=int, default=300, help="optimisation steps per defect")
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--n", type=int, default=16, help="generated images per defect and condition")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    split = model_split(args.model)
    gen = AnomalyDiffusion.load(args.model)
    kinds = args.kinds or gen.kinds_
    unknown = sorted(set(kinds) - set(gen.kinds_))
    if unknown:
        ap.error(f"unknown defect types {unknown}; the model has {gen.kinds_}")
    print(
        f"{args.model}: {torch.get_num_threads()} torch threads, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )
    rows = []
    for i, kind in enumerate(split.train_kinds):
        if kind not in kinds:
            continue
        x = to_unit(split.train_images[i : i + 1]).to(gen.device_)
        m = torch.as_tensor(split.train_masks[i : i + 1] > 0, dtype=torch.float32, device=gen.device_)[
            :, None
        ]
        label = torch.tensor([gen.kinds_.index(kind)], device=gen.device_)
        with torch.no_grad():
            learned = gen.conditioner_(label, m, x)
        t0 = time.perf_counter()
        fitted, losses = fit_condition(gen, x, m, learned, args.steps, args.lr, args.batch, args.seed)
        fit_s = time.perf_counter() - t0
        g = torch.Generator(device=gen.device_).manual_seed(args.seed + 1)
        t = torch.randint(0, gen.config.train_timesteps, (256,), generator=g, device=gen.device_)
        noise = torch.randn((256, *x.shape[1:]), generator=g, device=gen.device_)
        sched = make_scheduler(gen.config)
        with torch.no_grad():
            loss = {
                name: float(masked_loss(gen, sched, x, m, c, t, noise))
                for name, c in [
                    ("prior layout", gen.prior_condition_(x)),
                    ("anomaly stage", learned),
                    ("fitted", fitted),
                ]
            }
        masks = np.repeat(split.train_masks[i : i + 1], args.n, axis=0)
        contrast = {
            "real": float(
                defect_contrast(split.train_images[i : i + 1], split.train_masks[i : i + 1], signed=True)[0]
            )
        }
        for name, c in [("anomaly stage", None), ("fitted", fitted.expand(args.n, -1, -1))]:
            for reweight in (True, False):
                out = gen.generate(
                    split.normal,
                    args.n,
                    kinds=[kind] * args.n,
                    masks=masks,
                    seed=args.seed,
                    reweight=reweight,
                    conditions=c,
                )
                key = f"{name}{'' if reweight else ', no re-weighting'}"
                contrast[key] = float(np.nanmean(defect_contrast(out["images"], out["masks"], signed=True)))
        rows.append((kind, i, loss, contrast, losses, fit_s))
        print(
            f"{kind} (training image {i}): fit {fit_s:.0f} s, loss over the fit {np.mean(losses[: max(1, args.steps // 8)]):.4f}"
            f" -> {np.mean(losses[-max(1, args.steps // 8) :]):.4f} (first / last eighth)",
            flush=True,
        )

    names = list(rows[0][3])
    print(
        "\nsigned defect contrast on the defect's own mask (0..1 scale; + brighter), generated over "
        f"{args.n} normal images; masked loss on 256 fixed noised copies"
    )
    print(
        "\n| defect | "
        + " | ".join(f"contrast: {n}" for n in names)
        + " | loss: prior layout | loss: anomaly stage | loss: fitted |"
    )
    print("|---|" + "---|" * (len(names) + 3))
    for kind, i, loss, contrast, _, _ in rows:
        print(
            f"| {kind} ({i}) | "
            + " | ".join(f"{contrast[n]:+.3f}" for n in names)
            + " | "
            + " | ".join(f"{loss[n]:.4f}" for n in ("prior layout", "anomaly stage", "fitted"))
            + " |"
        )


if __name__ == "__main__":
    main()
