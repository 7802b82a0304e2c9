"""Evaluation of generated (image, mask) pairs.

- **Downstream localisation** (the paper's main claim): a small U-Net segmenter
  (:class:`~diffad.imagegen.models.Segmenter`) is trained on normal images plus one of: generated
  pairs, crop-and-paste pairs from the few real defective images (the classic augmentation), the
  few real defective images alone, or nothing; pixel AUROC and AP are measured on the held-out real
  images.
- **Copies**: IoU of each generated mask with its nearest training mask, over the eight
  flips/rotations and every integer shift of each training mask.
- **Mask fill**: the fraction of mask pixels that differ from the normal image by more than 0.1 (on
  a 0..1 scale): how much of the mask the generator actually turned into a defect.
- **Diversity and fidelity stand-ins** (Inception Score and LPIPS need pretrained networks that are not
  available): images are embedded with the bottleneck features of a segmenter trained here (on
  normal images and the few real defects, never on generated ones), average-pooled over the mask
  region. *Diversity* is the mean pairwise distance between generated samples of one type (the same
  for the held-out real images of that type is its reference); *fidelity gap* is the distance between
  the mean embedding of generated and of held-out real samples, divided by the real samples' mean
  pairwise distance.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import average_precision_score, roc_auc_score
from tqdm.auto import tqdm

from ..training import seeded
from .data import FewShotSplit
from .images import dihedral, to_unit
from .models import Segmenter

__all__ = [
    "crop_paste",
    "train_segmenter",
    "segment",
    "pixel_metrics",
    "nearest_mask_iou",
    "mask_fill",
    "defect_contrast",
    "signed_contrast_by_kind",
    "embed",
    "diversity",
    "downstream",
]


def _dihedral_np(a: np.ndarray, k: int) -> np.ndarray:
    """The dihedral transform ``k`` (0..7) of :func:`~diffad.imagegen.generator.dihedral` on the last
    two axes of one numpy array."""
    r = np.rot90(a, k % 4, axes=(-2, -1))
    return r[..., ::-1] if k >= 4 else r


def crop_paste(split: FewShotSplit, n: int, *, seed: int = 0) -> dict:
    """``n`` crop-and-paste pairs: a real few-shot defect (its masked pixels), flipped/rotated at
    random and shifted to a random position where it fits, pasted onto a random normal image."""
    rng = np.random.default_rng(seed)
    H, W = split.normal.shape[2:]
    images, masks, kinds = [], [], []
    for _ in range(n):
        j = rng.integers(len(split.train_images))
        k = int(rng.integers(8))
        src, m = _dihedral_np(split.train_images[j], k), _dihedral_np(split.train_masks[j], k)
        ys, xs = np.nonzero(m)
        dy = rng.integers(-ys.min(), H - ys.max())
        dx = rng.integers(-xs.min(), W - xs.max())
        src = np.roll(src, (dy, dx), axis=(1, 2))
        m = np.roll(m, (dy, dx), axis=(0, 1))
        out = split.normal[rng.integers(len(split.normal))].copy()
        out[:, m > 0] = src[:, m > 0]
        images.append(out)
        masks.append(m.astype(np.uint8))
        kinds.append(split.train_kinds[j])
    return {"images": np.stack(images), "masks": np.stack(masks), "kinds": kinds}


def train_segmenter(
    normal: np.ndarray,
    images: np.ndarray | None,
    masks: np.ndarray | None,
    *,
    steps: int = 600,
    batch_size: int = 32,
    lr: float = 2e-3,
    width: int = 16,
    seed: int = 0,
    device: str = "cpu",
    verbose: bool = False,
) -> Segmenter:
    """Train a :class:`Segmenter` with pixel-wise binary cross-entropy. Each batch holds half
    defect-free images (all-zero targets) and half defective pairs when any are given; random
    flips/rotations."""
    gen = torch.Generator(device=device).manual_seed(seed)
    with seeded(seed, device):  # initial weights; the caller's global stream is restored
        net = Segmenter(width).to(device)
    xn = to_unit(normal).to(device)
    has_pairs = images is not None and len(images) > 0
    if images is not None and has_pairs:
        xa = to_unit(images).to(device)
        ma = torch.as_tensor(np.asarray(masks) > 0, dtype=torch.float32, device=device)[:, None]
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=lr * 0.05)
    half = batch_size // 2 if has_pairs else batch_size
    for _ in tqdm(range(steps), desc="segmenter", disable=not verbose, leave=False):
        i = torch.randint(0, len(xn), (half,), generator=gen, device=device)
        x, m = xn[i], torch.zeros(half, 1, *xn.shape[2:], device=device)
        if has_pairs:
            j = torch.randint(0, len(xa), (batch_size - half,), generator=gen, device=device)
            x, m = torch.cat([x, xa[j]]), torch.cat([m, ma[j]])
        k = torch.randint(0, 8, (len(x),), generator=gen, device=device)
        loss = F.binary_cross_entropy_with_logits(net(dihedral(x, k)), dihedral(m, k))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return net.eval()


@torch.no_grad()
def segment(net: Segmenter, images: np.ndarray, device: str = "cpu") -> np.ndarray:
    """Defect probability per pixel, (n, H, W)."""
    return torch.sigmoid(net(to_unit(images).to(device)))[:, 0].cpu().numpy()


def pixel_metrics(prob: np.ndarray, masks: np.ndarray) -> dict[str, float]:
    """Pixel AUROC and AP over all pixels of all images."""
    y = (np.asarray(masks) > 0).ravel()
    p = np.asarray(prob).ravel()
    return {"pixel_AUROC": float(roc_auc_score(y, p)), "pixel_AP": float(average_precision_score(y, p))}


def nearest_mask_iou(generated: np.ndarray, train: np.ndarray) -> np.ndarray:
    """For each generated mask, the highest IoU with any training mask under any of the eight
    flips/rotations and any integer shift (intersections for all shifts at once by FFT
    cross-correlation)."""
    gen = (np.asarray(generated) > 0).astype(np.float64)
    H, W = gen.shape[1:]
    shape = (2 * H, 2 * W)
    refs = np.stack(
        [_dihedral_np(m, k) for m in (np.asarray(train) > 0).astype(np.float64) for k in range(8)]
    )
    fg = np.fft.rfft2(gen, shape)  # (n, ...)
    fr = np.fft.rfft2(refs[:, ::-1, ::-1], shape)  # flipped -> correlation
    area_g = gen.sum(axis=(1, 2))
    area_r = refs.sum(axis=(1, 2))
    best = np.zeros(len(gen))
    for r in range(len(refs)):
        inter = np.fft.irfft2(fg * fr[r], shape).round()  # (n, 2H, 2W): overlap at every shift
        # a shift can push part of the reference outside the image; counting the full reference area
        # in the union keeps the IoU conservative (never above the true value for a copy).
        iou = inter / np.maximum(area_g[:, None, None] + area_r[r] - inter, 1e-9)
        best = np.maximum(best, iou.reshape(len(gen), -1).max(axis=1))
    return best


def mask_fill(
    images: np.ndarray, normal: np.ndarray, masks: np.ndarray, threshold: float = 0.1
) -> np.ndarray:
    """Per sample: fraction of mask pixels whose mean absolute change from the normal image exceeds
    ``threshold`` (images on a 0..1 scale)."""
    diff = np.abs(images.astype(np.float64) - normal.astype(np.float64)).mean(axis=1) / 255.0
    m = np.asarray(masks) > 0
    return np.array([(d[k] > threshold).mean() if k.any() else np.nan for d, k in zip(diff, m, strict=True)])


def defect_contrast(
    images: np.ndarray, masks: np.ndarray, ring: int = 2, *, signed: bool = False
) -> np.ndarray:
    """Per sample: how far the mean colour of the mask pixels lies from the mean colour of the pixels
    around the mask (a ring ``ring`` pixels wide), mean absolute difference over channels on a 0..1
    scale (``images`` on a 0..255 scale, uint8 or float). Needs no normal image, so it measures real
    and generated defects alike (texture alone gives a small positive value). ``signed=True``: the
    mean difference over channels instead, positive where the defect is brighter than its
    surroundings."""
    from scipy import ndimage

    img = np.asarray(images, dtype=np.float64) / 255.0
    m = np.asarray(masks) > 0
    spatial = np.zeros((3, 3, 3), bool)
    spatial[1] = ndimage.generate_binary_structure(2, 1)  # grow each mask in its own image only
    around = ndimage.binary_dilation(m, structure=spatial, iterations=ring) & ~m

    def mean_colour(sel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        count = sel.sum(axis=(1, 2))
        return (img * sel[:, None]).sum(axis=(2, 3)) / np.maximum(count, 1)[:, None], count

    (inside, n_in), (ring_colour, n_ring) = mean_colour(m), mean_colour(around)
    diff = inside - ring_colour
    return np.where((n_in > 0) & (n_ring > 0), (diff if signed else np.abs(diff)).mean(axis=1), np.nan)


def signed_contrast_by_kind(sets: dict[str, tuple], kinds) -> dict[str, dict[str, float]]:
    """``{kind: {set name: mean signed defect contrast}}`` for ``sets`` of ``(images, masks, kinds)``.
    Compared with the few-shot *training* defects it needs no held-out image: a generated type whose
    sign differs from its real defects' (dark where they are bright) is drawn with the wrong look."""
    out: dict[str, dict[str, float]] = {}
    for name, (images, masks, of) in sets.items():
        c = defect_contrast(images, masks, signed=True)
        of = np.asarray(of)
        for kind in kinds:
            if (of == kind).any():
                out.setdefault(kind, {})[name] = float(np.nanmean(c[of == kind]))
    return out


@torch.no_grad()
def embed(net: Segmenter, images: np.ndarray, masks: np.ndarray, device: str = "cpu") -> np.ndarray:
    """Bottleneck features of ``net`` average-pooled over each (downsampled) mask, (n, channels)."""
    f = net.features(to_unit(images).to(device))
    m = torch.as_tensor(np.asarray(masks) > 0, dtype=torch.float32, device=device)[:, None]
    m = F.adaptive_max_pool2d(m, f.shape[-2:])
    return ((f * m).sum((2, 3)) / m.sum((2, 3)).clamp_min(1.0)).cpu().numpy()


def _mean_pairwise(z: np.ndarray) -> float:
    if len(z) < 2:
        return float("nan")
    d = np.sqrt(((z[:, None] - z[None]) ** 2).sum(-1))
    return float(d[np.triu_indices(len(z), 1)].mean())


def diversity(z_gen: np.ndarray, z_real: np.ndarray) -> dict[str, float]:
    """Diversity (mean pairwise distance) of generated and real embeddings, and the fidelity gap."""
    real = _mean_pairwise(z_real)
    gap = (
        float(np.linalg.norm(z_gen.mean(0) - z_real.mean(0)) / real)
        if real and np.isfinite(real)
        else float("nan")
    )
    return {"diversity": _mean_pairwise(z_gen), "diversity_real": real, "fidelity_gap": gap}


def downstream(
    split: FewShotSplit,
    pairs: dict[str, dict | None],
    *,
    seeds=(0, 1, 2),
    steps: int = 600,
    device: str = "cpu",
    verbose: bool = False,
) -> dict:
    """Train one segmenter per (training set, seed) and score it on the held-out images.

    ``pairs`` maps a name to ``{"images", "masks"}`` (added to the few real defective images) or to
    None (normal images only, no anomalies at all). Returns per name the metrics of every seed and
    their mean and standard deviation, and the training time.
    """
    out = {}
    for name, extra in pairs.items():
        runs = []
        t0 = time.perf_counter()
        for seed in seeds:
            if extra is None:
                imgs = msks = None
            else:
                imgs = np.concatenate([split.train_images, extra["images"]])
                msks = np.concatenate([split.train_masks, extra["masks"]])
            net = train_segmenter(
                split.normal, imgs, msks, steps=steps, seed=seed, device=device, verbose=verbose
            )
            prob = segment(net, split.test_images, device)
            r = pixel_metrics(prob, split.test_masks)
            for kind in sorted(set(split.test_kinds) - {"good"}):
                sel = np.asarray(split.test_kinds) == kind
                r[f"pixel_AP/{kind}"] = float(
                    average_precision_score(split.test_masks[sel].ravel() > 0, prob[sel].ravel())
                )
            runs.append(r)
        keys = runs[0].keys()
        out[name] = {
            "runs": runs,
            "mean": {k: float(np.mean([r[k] for r in runs])) for k in keys},
            "std": {k: float(np.std([r[k] for r in runs])) for k in keys},
            "seconds": time.perf_counter() - t0,
        }
    return out


def evaluate_generator(
    gen,
    split: FewShotSplit,
    *,
    n_per_kind: int = 64,
    seeds=(0, 1, 2),
    seg_steps: int = 600,
    sample_seed: int = 0,
    device: str = "cpu",
    verbose: bool = False,
) -> tuple[dict, dict]:
    """The whole evaluation of a fitted :class:`~diffad.imagegen.AnomalyDiffusion` on ``split``.

    Generates ``n_per_kind`` pairs per type with attention re-weighting and the same number without
    it (same masks, same normal images, same noise), makes as many crop-and-paste pairs, and measures
    downstream pixel AUROC / AP (segmenter seeds ``seeds``), nearest-training-mask IoU, mask fill and
    the diversity stand-ins. Returns ``(results, samples)``, ``samples`` holding the generated pairs.
    """
    kinds = [k for k in gen.kinds_ for _ in range(n_per_kind)]
    t0 = time.perf_counter()
    on = gen.generate(split.normal, len(kinds), kinds=kinds, seed=sample_seed, reweight=True)
    t_gen = time.perf_counter() - t0
    off = gen.generate(
        split.normal, len(kinds), kinds=kinds, masks=on["masks"], seed=sample_seed, reweight=False
    )
    paste = crop_paste(split, len(kinds), seed=sample_seed)
    sets = {
        "none (normal images only)": None,
        "real few-shot only": {"images": split.train_images[:0], "masks": split.train_masks[:0]},
        "crop-and-paste": paste,
        "generated": on,
        "generated, no re-weighting": off,
    }
    results: dict = {
        "n_generated": len(kinds),
        "generate_seconds": t_gen,
        "generate_seconds_per_image": t_gen / len(kinds),
    }
    results["downstream"] = downstream(
        split, sets, seeds=seeds, steps=seg_steps, device=device, verbose=verbose
    )
    iou = nearest_mask_iou(on["masks"], split.train_masks)
    results["nearest_mask_iou"] = {
        "mean": float(iou.mean()),
        "median": float(np.median(iou)),
        "max": float(iou.max()),
        "share_above_0.9": float((iou > 0.9).mean()),
    }
    results["mask_fill"] = {
        name: float(np.nanmean(mask_fill(s["images"], split.normal[s["normal_index"]], s["masks"])))
        for name, s in (("re-weighting", on), ("no re-weighting", off))
    }
    results["signed_contrast"] = signed_contrast_by_kind(
        {
            "real few-shot": (split.train_images, split.train_masks, split.train_kinds),
            "generated": (on["images"], on["masks"], on["kinds"]),
            "generated, no re-weighting": (off["images"], off["masks"], off["kinds"]),
        },
        gen.kinds_,
    )
    real_kinds = np.asarray(split.test_kinds)
    net = train_segmenter(
        split.normal, split.train_images, split.train_masks, steps=seg_steps, seed=1234, device=device
    )
    div = {}
    for kind in gen.kinds_:
        real = real_kinds == kind
        if real.sum() < 2:
            continue
        z_real = embed(net, split.test_images[real], split.test_masks[real], device)
        sel = np.asarray(on["kinds"]) == kind
        row = {"generated": diversity(embed(net, on["images"][sel], on["masks"][sel], device), z_real)}
        sel_p = np.asarray(paste["kinds"]) == kind
        if sel_p.sum() >= 2:
            row["crop-and-paste"] = diversity(
                embed(net, paste["images"][sel_p], paste["masks"][sel_p], device), z_real
            )
        div[kind] = row
    results["diversity"] = div
    return results, {"reweighting": on, "no_reweighting": off, "crop_paste": paste}
