"""Seeded generators of data with injected, labelled anomalies, for the demo and the tests.

Every generator takes ``seed`` and draws only from ``np.random.default_rng(seed)``: the same seed gives
the same arrays, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..validation import check_fraction, check_option, fail
from .records import ImageSet

__all__ = [
    "SERIES_ANOMALY_KINDS",
    "IMAGE_DEFECT_KINDS",
    "FAINT_CONTRAST",
    "TABULAR_ANOMALY_KINDS",
    "Segment",
    "SyntheticSeries",
    "make_defect_images",
    "make_series",
    "make_tabular",
]

SERIES_ANOMALY_KINDS = ("spike", "level_shift", "contextual", "frequency", "trend", "correlation_break")
TABULAR_ANOMALY_KINDS = ("local", "global", "dependency", "clustered")
IMAGE_DEFECT_KINDS = ("scratch", "hole", "stain", "crack")
# defect strength of the SYNTH-IMG-FAINT sets: full-strength defects are found by a segmenter trained on
# a few of them alone, which leaves no room to rank augmentations (see docs/benchmarks.md)
FAINT_CONTRAST = 0.12


@dataclass(frozen=True)
class Segment:
    """One injected anomaly: test indices ``[start, end)``, its kind and the channels it touches."""

    start: int
    end: int
    kind: str
    channels: tuple[int, ...]


@dataclass(frozen=True)
class SyntheticSeries:
    """A generated multivariate series split in time.

    Attributes
    ----------
    train : (n_train, K) float64, anomaly-free
    test : (n_test, K) float64, with the injected anomalies
    labels : (n_test,) int8, 1 inside an anomaly
    channel_labels : (n_test, K) int8, 1 where that channel was altered (per-channel ground truth)
    segments : the injected anomalies
    """

    train: np.ndarray
    test: np.ndarray
    labels: np.ndarray
    channel_labels: np.ndarray
    segments: tuple[Segment, ...] = field(default_factory=tuple)


def _base_signal(rng: np.random.Generator, n: int, K: int, n_factors: int, noise: float):
    """Correlated channels: a random mix of a few seasonal factors, plus per-channel trend and noise."""
    t = np.arange(n, dtype=np.float64)
    periods = rng.uniform(40.0, 200.0, size=n_factors)
    phases = rng.uniform(0, 2 * np.pi, size=n_factors)
    factors = np.sin(2 * np.pi * t[:, None] / periods + phases)  # (n, F)
    mix = rng.normal(0.0, 1.0, size=(n_factors, K))  # (F, K)
    seasonal = factors @ mix  # (n, K)
    trend = np.outer(t / n, rng.normal(0.0, 0.3, size=K))  # (n, K)
    level = rng.normal(0.0, 1.0, size=K)
    X = seasonal + trend + level + rng.normal(0.0, noise, size=(n, K))
    return X, factors, mix, periods, phases


def make_series(
    n_train: int = 2000,
    n_test: int = 2000,
    n_channels: int = 8,
    *,
    kinds: tuple[str, ...] = SERIES_ANOMALY_KINDS,
    n_anomalies: int = 12,
    noise: float = 0.1,
    seed: int = 0,
) -> SyntheticSeries:
    """Generate a multivariate series with anomalies of the given ``kinds`` injected in the test part.

    Kinds: ``spike`` (1-3 extreme points), ``level_shift`` (a constant offset over a segment),
    ``contextual`` (the seasonal pattern of a channel inverted: values stay in range but are wrong for
    the moment), ``frequency`` (a channel oscillates faster), ``trend`` (a growing ramp over a segment,
    a collective anomaly), ``correlation_break`` (a channel decouples from the others: its values are
    replaced by an independent series with the same spread). The anomalies are placed in turn over
    the kinds, without overlap, at least 20 points apart.
    """
    for k in kinds:
        check_option(k, SERIES_ANOMALY_KINDS, name="anomaly kind")
    if n_channels < 2 and "correlation_break" in kinds:
        raise fail(
            "n_channels",
            ">= 2 for correlation_break anomalies",
            str(n_channels),
            "Add channels or drop that kind.",
        )
    if min(n_train, n_test, n_channels) < 1:
        raise fail(
            "sizes",
            "n_train, n_test, n_channels >= 1",
            f"{(n_train, n_test, n_channels)}",
            "Pass positive sizes.",
        )
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    X, factors, mix, periods, phases = _base_signal(rng, n, n_channels, n_factors=3, noise=noise)
    train, test = X[:n_train].copy(), X[n_train:].copy()
    scale = train.std(axis=0) + 1e-12  # (K,)
    labels = np.zeros(n_test, dtype=np.int8)
    chan = np.zeros((n_test, n_channels), dtype=np.int8)
    segments: list[Segment] = []

    slot = n_test // max(n_anomalies, 1)
    if slot < 30:
        raise fail(
            "n_anomalies",
            f"at most {n_test // 30} for n_test={n_test}",
            str(n_anomalies),
            "Use fewer anomalies or a longer test part.",
        )
    t_test = np.arange(n_train, n, dtype=np.float64)
    for i in range(n_anomalies):
        kind = kinds[i % len(kinds)]
        length = (
            1 + int(rng.integers(0, 3)) if kind == "spike" else int(rng.integers(15, min(80, slot - 10) + 1))
        )
        lo = i * slot + 10
        start = int(rng.integers(lo, max(lo + 1, (i + 1) * slot - length - 10)))
        end = start + length
        n_ch = int(rng.integers(1, max(2, n_channels // 3) + 1))
        chans = np.sort(rng.choice(n_channels, size=n_ch, replace=False))
        seg = slice(start, end)
        for c in chans:
            s = scale[c]
            if kind == "spike":
                test[seg, c] += rng.choice([-1.0, 1.0]) * rng.uniform(4.0, 7.0) * s
            elif kind == "level_shift":
                test[seg, c] += rng.choice([-1.0, 1.0]) * rng.uniform(1.5, 3.0) * s
            elif kind == "contextual":
                seasonal = factors[n_train + start : n_train + end] @ mix[:, c]
                test[seg, c] -= 2.0 * seasonal
            elif kind == "frequency":
                seasonal = factors[n_train + start : n_train + end] @ mix[:, c]
                amp = np.abs(mix[:, c]).sum()
                fast = amp * np.sin(2 * np.pi * t_test[seg] / rng.uniform(5.0, 12.0))
                test[seg, c] += fast - seasonal
            elif kind == "trend":
                test[seg, c] += rng.choice([-1.0, 1.0]) * np.linspace(0.0, rng.uniform(2.0, 4.0) * s, length)
            elif kind == "correlation_break":
                mu = test[seg, c].mean()
                walk = np.cumsum(rng.normal(0.0, 1.0, size=length))
                walk = (walk - walk.mean()) / (walk.std() + 1e-12)
                test[seg, c] = mu + 1.5 * s * walk
        labels[seg] = 1
        chan[seg, chans] = 1
        segments.append(Segment(start, end, kind, tuple(int(c) for c in chans)))
    return SyntheticSeries(train, test, labels, chan, tuple(segments))


def _random_covariance(rng: np.random.Generator, d: int) -> np.ndarray:
    A = rng.normal(0.0, 1.0, size=(d, d))
    cov = A @ A.T / d + 0.1 * np.eye(d)
    return cov


def make_tabular(
    n_samples: int = 1000,
    n_features: int = 8,
    *,
    kind: str = "local",
    contamination: float = 0.05,
    n_clusters: int = 3,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Generate tabular data with anomalies of one ADBench kind; returns ``(X, y)``.

    Normal points come from a Gaussian mixture with ``n_clusters`` components and random covariances.
    Anomalies, following the ADBench taxonomy (Han et al., 2022):

    - ``local``: the same mixture with covariances scaled by 5 (near the clusters, but too spread out);
    - ``global``: uniform over the normal data's bounding box enlarged by 10% on each side, keeping only
      points away from the normal data;
    - ``dependency``: each feature drawn from the normal marginal independently of the others (the
      correlation structure is broken, every single feature looks normal);
    - ``clustered``: a mixture with the same covariances and means scaled by 5 (a tight group away from
      the normal clusters).
    """
    check_option(kind, TABULAR_ANOMALY_KINDS, name="anomaly kind")
    check_fraction(contamination, name="contamination", low=0.0, high=0.5)
    rng = np.random.default_rng(seed)
    n_anom = max(1, int(round(n_samples * contamination)))
    n_norm = n_samples - n_anom
    means = rng.normal(0.0, 3.0, size=(n_clusters, n_features))
    covs = np.stack([_random_covariance(rng, n_features) for _ in range(n_clusters)])

    def mixture(n: int, mu: np.ndarray, cov: np.ndarray) -> np.ndarray:
        comp = rng.integers(0, n_clusters, size=n)
        chol = np.linalg.cholesky(cov)  # (C, d, d)
        z = rng.normal(size=(n, n_features))
        return mu[comp] + np.einsum("nij,nj->ni", chol[comp], z)

    normal = mixture(n_norm, means, covs)
    if kind == "local":
        anom = mixture(n_anom, means, covs * 5.0)
    elif kind == "clustered":
        anom = mixture(n_anom, means * 5.0, covs)
    elif kind == "dependency":
        pool = mixture(n_anom * n_features, means, covs)
        anom = pool[rng.permutation(len(pool))[: n_anom * n_features]].reshape(n_anom, n_features, n_features)
        anom = anom[:, np.arange(n_features), np.arange(n_features)]  # each feature from a different draw
    else:  # global
        lo, hi = normal.min(axis=0), normal.max(axis=0)
        span = hi - lo
        sd = normal.std(axis=0)
        kept: list[np.ndarray] = []
        while sum(len(k) for k in kept) < n_anom:
            cand = rng.uniform(lo - 0.1 * span, hi + 0.1 * span, size=(4 * n_anom, n_features))
            d2 = (((cand[:, None, :] - normal[None, :, :]) / sd) ** 2).sum(-1).min(axis=1)
            kept.append(cand[d2 > np.quantile(d2, 0.5)])
        anom = np.concatenate(kept)[:n_anom]
    X = np.concatenate([normal, anom])
    y = np.concatenate([np.zeros(n_norm, dtype=np.int8), np.ones(n_anom, dtype=np.int8)])
    order = rng.permutation(n_samples)
    return X[order], y[order]


# ---------------------------------------------------------------------------------------------------
# Textured images with defects


def _texture(rng: np.random.Generator, size: int, base: np.ndarray) -> np.ndarray:
    """A woven texture: two sinusoidal gratings at right angles with a random phase and slight random
    tilt, a few low-frequency shading waves and fine grain noise, around the colour ``base``."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size
    tilt = rng.normal(0.0, 0.05)
    u = xx * np.cos(tilt) + yy * np.sin(tilt)
    v = yy * np.cos(tilt) - xx * np.sin(tilt)
    freq = 6.0 * (1.0 + rng.normal(0.0, 0.03))
    weave = 0.06 * np.sin(2 * np.pi * (freq * u + rng.uniform())) + 0.06 * np.sin(
        2 * np.pi * (freq * v + rng.uniform())
    )
    shade = 0.04 * np.sin(2 * np.pi * (rng.uniform(0.5, 1.5) * u + rng.uniform()))
    grain = rng.normal(0.0, 0.015, size=(size, size))
    img = base[:, None, None] + (weave + shade + grain)[None]
    return img


def _segment_mask(size: int, points: np.ndarray, width: float) -> np.ndarray:
    """Pixels whose centre lies within ``width / 2`` of the polyline through ``points`` (in pixels)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    pix = np.stack([yy.ravel(), xx.ravel()], axis=1)
    best = np.full(len(pix), np.inf)
    for a, b in zip(points[:-1], points[1:], strict=True):
        ab = b - a
        t = np.clip(((pix - a) @ ab) / max(ab @ ab, 1e-9), 0.0, 1.0)
        best = np.minimum(best, np.linalg.norm(pix - (a + t[:, None] * ab), axis=1))
    return (best <= width / 2).reshape(size, size)


def _defect(rng: np.random.Generator, kind: str, size: int, img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Draw one defect of ``kind`` on ``img`` (3, size, size); return the new image and its 0/1 mask."""
    s = float(size)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    centre = rng.uniform(0.25 * s, 0.75 * s, size=2)
    out = img.copy()
    if kind == "scratch":  # a thin bright straight line
        angle = rng.uniform(0, np.pi)
        half = rng.uniform(0.18, 0.35) * s
        d = np.array([np.sin(angle), np.cos(angle)]) * half
        mask = _segment_mask(size, np.stack([centre - d, centre + d]), max(1.0, s / 24))
        out[:, mask] = np.clip(img[:, mask] + 0.35, 0, 1)
    elif kind == "hole":  # a dark disk with a darker rim
        r = rng.uniform(0.07, 0.14) * s
        dist = np.hypot(yy - centre[0], xx - centre[1])
        mask = dist <= r
        depth = 0.12 + 0.1 * (dist / r)
        out[:, mask] = np.broadcast_to(depth[mask] * np.array([0.9, 0.85, 0.8])[:, None], out[:, mask].shape)
    elif kind == "stain":  # an irregular brown blob, blended into the texture
        field = np.zeros((size, size))
        for _ in range(3):
            c = centre + rng.normal(0, 0.06 * s, size=2)
            sy, sx = rng.uniform(0.05, 0.11, size=2) * s
            field += np.exp(-0.5 * (((yy - c[0]) / sy) ** 2 + ((xx - c[1]) / sx) ** 2))
        mask = field > 0.5
        tint = np.array([0.45, 0.28, 0.12])[:, None]
        out[:, mask] = 0.35 * img[:, mask] + 0.65 * tint
    elif kind == "crack":  # a dark jagged random walk with one branch
        n_seg = 6
        step = rng.uniform(0.06, 0.09) * s
        heading = rng.uniform(0, 2 * np.pi)
        pts = [centre - 3 * step * np.array([np.sin(heading), np.cos(heading)])]
        for _ in range(n_seg):
            heading += rng.normal(0, 0.6)
            pts.append(pts[-1] + step * np.array([np.sin(heading), np.cos(heading)]))
        main = np.clip(np.array(pts), 0, s)
        fork = main[n_seg // 2]
        bh = heading + rng.choice([-1, 1]) * rng.uniform(0.6, 1.2)
        branch = np.clip(np.stack([fork, fork + 2.5 * step * np.array([np.sin(bh), np.cos(bh)])]), 0, s)
        width = max(1.0, s / 28)
        mask = _segment_mask(size, main, width) | _segment_mask(size, branch, width)
        out[:, mask] = 0.4 * img[:, mask] * 0.5
    else:
        check_option(kind, IMAGE_DEFECT_KINDS, name="defect kind")
        raise AssertionError(kind)
    return out, mask


def make_defect_images(
    n_normal: int = 200,
    n_per_kind: int = 12,
    *,
    size: int = 32,
    kinds: tuple[str, ...] = IMAGE_DEFECT_KINDS,
    n_good_test: int = 8,
    contrast: float = 1.0,
    seed: int = 0,
):
    """Generate small woven-texture images of one "product" and defective copies with pixel masks.

    Returns an :class:`~diffad.data.ImageSet` named ``SYNTH-IMG/<seed>``: ``train`` holds ``n_normal``
    defect-free images; ``test`` holds ``n_per_kind`` defective images of each kind in ``kinds``
    (``scratch``: a thin bright line; ``hole``: a dark disk; ``stain``: an irregular brown blob;
    ``crack``: a dark jagged line with a branch), then ``n_good_test`` defect-free images (kind
    ``"good"``, all-zero masks). Masks use the class id ``i + 1`` of the kind's position in ``kinds``.
    Every image has its own texture phase, tilt and shading; the texture colour is shared, as for a
    single product. Images are uint8 (n, 3, size, size).

    ``contrast`` in (0, 1] blends each defect into its texture (``texture + contrast * (defect -
    texture)`` inside the mask): 1 gives the full-strength defects of ``SYNTH-IMG/<seed>``,
    ``FAINT_CONTRAST`` the faint ones of ``SYNTH-IMG-FAINT/<seed>``. The random draws do not depend on
    it, so the same seed gives the same normal images, masks and textures at every contrast.
    """
    if size < 8:
        raise fail("size", "at least 8 pixels", repr(size), "Use size >= 8.")
    for k in kinds:
        check_option(k, IMAGE_DEFECT_KINDS, name="defect kind")
    if n_normal < 1 or n_per_kind < 1 or n_good_test < 0:
        raise fail(
            "image counts",
            "n_normal >= 1, n_per_kind >= 1, n_good_test >= 0",
            f"{n_normal}, {n_per_kind}, {n_good_test}",
            "Pass positive counts.",
        )
    if not 0.0 < contrast <= 1.0:
        raise fail(
            "contrast",
            "a number in (0, 1]",
            repr(contrast),
            "Use 1 for full-strength defects, e.g. 0.3 for faint ones.",
        )
    rng = np.random.default_rng(seed)
    base = np.array([0.62, 0.60, 0.55]) + rng.normal(0, 0.03, size=3)

    def to_u8(img: np.ndarray) -> np.ndarray:
        return np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)

    train = np.stack([to_u8(_texture(rng, size, base)) for _ in range(n_normal)])
    test, masks, names = [], [], []
    for ki, kind in enumerate(kinds):
        for _ in range(n_per_kind):
            texture = np.clip(_texture(rng, size, base), 0, 1)
            img, mask = _defect(rng, kind, size, texture)
            test.append(to_u8(texture + contrast * (img - texture)))
            masks.append(mask.astype(np.uint8) * (ki + 1))
            names.append(kind)
    for _ in range(n_good_test):
        test.append(to_u8(_texture(rng, size, base)))
        masks.append(np.zeros((size, size), np.uint8))
        names.append("good")
    name = f"SYNTH-IMG/{seed}" if contrast == 1.0 else f"SYNTH-IMG/{seed} (contrast {contrast:g})"
    return ImageSet(name, train, np.stack(test), np.stack(masks), tuple(names))
