"""Image sets: the MVTec 3D-AD layout (train images, test images, pixel masks) and generated textures."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from ..exceptions import DataValidationError
from ..validation import fail
from .collections import resolve_data_dir
from .records import ImageSet
from .synthetic import FAINT_CONTRAST, make_defect_images

__all__ = ["load_images", "IMAGE_FOLDERS"]

IMAGE_FOLDERS = ("MVTec3D_tire_subset", "mvtec_3d/tire", "MVTec3D/tire", "mvtec_3d_anomaly_detection/tire")


def _read_png(path: Path, size: tuple[int, int] | None, mask: bool) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as f:
        im = f.convert("L" if mask else "RGB")
        if size is not None:
            resample = Image.Resampling.NEAREST if mask else Image.Resampling.BILINEAR
            im = im.resize((size[1], size[0]), resample)
        return np.asarray(im, dtype=np.uint8)


def load_images(
    name: str = "MVTec3D/tire", data_dir: str | Path | None = None, size: tuple[int, int] | None = None
) -> ImageSet:
    """Read an MVTec-style image set: ``train/good/rgb/*.png`` and ``test/<kind>/rgb|gt/*.png`` (the
    MVTec 3D-AD layout). ``size=(H, W)`` resizes (bilinear for images, nearest for masks).

    ``SYNTH-IMG/<seed>`` is the built-in generated set :func:`diffad.data.synthetic.make_defect_images`
    (drawn at ``size``, default 32 x 32; nothing to read); ``SYNTH-IMG-FAINT/<seed>`` the same images
    with the defects blended in at ``FAINT_CONTRAST``."""
    family, _, seed = name.partition("/")
    if family in ("SYNTH-IMG", "SYNTH-IMG-FAINT"):
        if not seed.isdigit():
            raise fail(f"{family} set", f"a seed, e.g. {family}/0", repr(name), f"Use {family}/<integer>.")
        if size is not None and size[0] != size[1]:
            raise fail(f"{family} size", "a square size", repr(size), "Use equal height and width.")
        images = make_defect_images(
            size=size[0] if size else 32,
            seed=int(seed),
            contrast=FAINT_CONTRAST if family == "SYNTH-IMG-FAINT" else 1.0,
        )
        return replace(images, name=name)
    if name != "MVTec3D/tire":
        raise fail(
            "image set",
            "'MVTec3D/tire', 'SYNTH-IMG/<seed>' or 'SYNTH-IMG-FAINT/<seed>'",
            repr(name),
            "Use one of the registered image sets.",
        )
    root_dir = resolve_data_dir(data_dir)
    root = next(
        (root_dir / f for f in IMAGE_FOLDERS if (root_dir / f / "train" / "good" / "rgb").is_dir()), None
    )
    if root is None:
        raise DataValidationError(
            f"MVTec3D/tire: expected train/good/rgb/*.png under one of {list(IMAGE_FOLDERS)} in {root_dir}, not found. "
            "Get MVTec 3D-AD (CC BY-NC-SA 4.0) from https://www.mvtec.com/company/research/datasets/mvtec-3d-ad."
        )
    train = np.stack(
        [_read_png(p, size, False) for p in sorted((root / "train" / "good" / "rgb").glob("*.png"))]
    )
    imgs, masks, kinds = [], [], []
    for kind_dir in sorted(p for p in (root / "test").iterdir() if p.is_dir()):
        for p in sorted((kind_dir / "rgb").glob("*.png")):
            imgs.append(_read_png(p, size, False))
            gt = kind_dir / "gt" / p.name
            masks.append(
                _read_png(gt, size, True) if gt.is_file() else np.zeros(imgs[-1].shape[:2], np.uint8)
            )
            kinds.append(kind_dir.name)
    return ImageSet(
        name, train.transpose(0, 3, 1, 2), np.stack(imgs).transpose(0, 3, 1, 2), np.stack(masks), tuple(kinds)
    )
