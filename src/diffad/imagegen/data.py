"""The few-shot split of an image set: the defective images of each type are divided into a small
training part (the paper's one third) and a held-out part for the downstream evaluation."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.loaders import ImageSet
from ..validation import check_fraction, fail

__all__ = ["FewShotSplit", "few_shot_split", "crop_image_set", "model_split"]


@dataclass(frozen=True)
class FewShotSplit:
    """``normal`` (n, 3, H, W) uint8 defect-free images; ``train_*`` the few defective images with
    binary masks and types; ``test_*`` the held-out images (defective ones and any defect-free test
    images, type ``"good"``) with binary masks."""

    name: str
    normal: np.ndarray
    train_images: np.ndarray
    train_masks: np.ndarray
    train_kinds: tuple[str, ...]
    test_images: np.ndarray
    test_masks: np.ndarray
    test_kinds: tuple[str, ...]

    @property
    def kinds(self) -> list[str]:
        return sorted(set(self.train_kinds))


def few_shot_split(images: ImageSet, fraction: float = 1 / 3) -> FewShotSplit:
    """The first ``ceil(fraction * n)`` images of every defect type (in file order) train; the rest,
    and all defect-free test images, are held out. Deterministic."""
    check_fraction(fraction, name="few-shot fraction")
    kinds = np.asarray([str(k) for k in images.test_kinds])
    train_idx: list[int] = []
    test_idx: list[int] = []
    for kind in dict.fromkeys(images.test_kinds):
        idx = np.flatnonzero(kinds == kind)
        if kind == "good":
            test_idx.extend(idx)
            continue
        k = max(1, math.ceil(fraction * len(idx)))
        if k >= len(idx):
            raise fail(
                f"defect type {kind!r}",
                "at least two images (one to train on, one to hold out)",
                f"{len(idx)}",
                "Add images of this type or drop it.",
            )
        train_idx.extend(idx[:k])
        test_idx.extend(idx[k:])
    if not train_idx:
        raise fail(
            images.name,
            "defective test images",
            "only defect-free ones",
            "Use an image set with defect masks.",
        )
    masks = (images.test_masks > 0).astype(np.uint8)
    tr, te = np.asarray(train_idx), np.asarray(test_idx)
    return FewShotSplit(
        images.name,
        images.train,
        images.test[tr],
        masks[tr],
        tuple(str(k) for k in kinds[tr]),
        images.test[te],
        masks[te],
        tuple(str(k) for k in kinds[te]),
    )


def _resize(a: np.ndarray, size: int, mask: bool) -> np.ndarray:
    from PIL import Image

    im = Image.fromarray(a if mask else a.transpose(1, 2, 0))
    resample = Image.Resampling.NEAREST if mask else Image.Resampling.BILINEAR
    out = np.asarray(im.resize((size, size), resample))
    return out if mask else out.transpose(2, 0, 1)


def crop_image_set(
    images: ImageSet,
    crop: int,
    size: int,
    *,
    normals_per_image: int = 20,
    good_per_image: int = 4,
    seed: int = 0,
) -> ImageSet:
    """Square crops of large images, resized to ``size``: for sets whose defects cover a fraction of a
    percent of the image (MVTec 3D-AD tire: 0.1-0.3 %), which would vanish at 32 x 32.

    Defective images give one crop each, around the defect's centre shifted by up to a quarter of the
    crop at random (so defects are not always centred); defect-free images give ``normals_per_image``
    (training) or ``good_per_image`` (test) crops centred on the object: centres are drawn where the
    crop window's mean brightness is at least the average of the brightest and the mean window (the
    dark background is left out). Deterministic for a seed."""
    if crop < size:
        raise fail(
            "crop",
            f"at least the image size {size}",
            repr(crop),
            "Crop at least as many pixels as the output size.",
        )
    H, W = images.train.shape[2:]
    if crop > min(H, W):
        raise fail("crop", f"at most the image side {min(H, W)}", repr(crop), "Use a smaller crop.")
    rng = np.random.default_rng(seed)
    half = crop // 2

    def object_centres(img: np.ndarray, n: int) -> list[tuple[int, int]]:
        g = img.astype(np.float64).mean(axis=0)
        ii = np.pad(g.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        win = (ii[crop:, crop:] - ii[:-crop, crop:] - ii[crop:, :-crop] + ii[:-crop, :-crop]) / crop**2
        ok = np.argwhere(win >= (win.max() + win.mean()) / 2)
        pick = ok[rng.integers(len(ok), size=n)]
        return [(int(y) + half, int(x) + half) for y, x in pick]

    def cut(a: np.ndarray, cy: int, cx: int) -> np.ndarray:
        cy = int(np.clip(cy, half, H - crop + half))
        cx = int(np.clip(cx, half, W - crop + half))
        return a[..., cy - half : cy - half + crop, cx - half : cx - half + crop]

    train = [
        _resize(cut(img, *c), size, False)
        for img in images.train
        for c in object_centres(img, normals_per_image)
    ]
    test, masks, kinds = [], [], []
    for img, m, kind in zip(images.test, images.test_masks, images.test_kinds, strict=True):
        if m.any():
            ys, xs = np.nonzero(m)
            centres = [
                (
                    int(ys.mean() + rng.integers(-crop // 4, crop // 4 + 1)),
                    int(xs.mean() + rng.integers(-crop // 4, crop // 4 + 1)),
                )
            ]
        else:
            centres = object_centres(img, good_per_image)
        for c in centres:
            test.append(_resize(cut(img, *c), size, False))
            masks.append(_resize(cut(m, *c), size, True))
            kinds.append(kind)
    return ImageSet(
        f"{images.name}@crop{crop}", np.stack(train), np.stack(test), np.stack(masks), tuple(kinds)
    )


def model_split(model: str | Path, data_dir: str | None = None, name: str | None = None) -> FewShotSplit:
    """The few-shot split of the image set a model folder was trained on, as its ``data.json`` records
    it (set name, size, crop, few-shot fraction); ``name``: another set, read the same way;
    ``data_dir``: where the data lies (default: the folder recorded at training)."""
    from ..data import load_images

    spec = json.loads((Path(model) / "data.json").read_text())
    if name is not None:
        spec["name"] = name
    s, crop = spec["size"], spec.get("crop")
    if crop:
        images = crop_image_set(load_images(spec["name"], data_dir or spec.get("data_dir")), crop, s)
    else:
        images = load_images(spec["name"], data_dir or spec.get("data_dir"), (s, s))
    return few_shot_split(images, spec["fraction"])
