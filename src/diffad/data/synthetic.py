"""Seeded generators of data with injected, labelled anomalies, for the demo and the tests.

Every generator takes ``seed`` and draws only from ``np.random.default_rng(seed)``: the same seed gives
the same arrays, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..validation import check_fraction, check_option, fail

__all__ = [
    "SERIES_ANOMALY_KINDS",
    "TABULAR_ANOMALY_KINDS",
    "Segment",
    "SyntheticSeries",
    "make_series",
    "make_tabular",
]

SERIES_ANOMALY_KINDS = ("spike", "level_shift", "contextual", "frequency", "trend", "correlation_break")
TABULAR_ANOMALY_KINDS = ("local", "global", "dependency", "clustered")


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
        raise fail("n_channels", ">= 2 for correlation_break anomalies", str(n_channels), "Add channels or drop that kind.")
    if min(n_train, n_test, n_channels) < 1:
        raise fail("sizes", "n_train, n_test, n_channels >= 1", f"{(n_train, n_test, n_channels)}", "Pass positive sizes.")
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
        raise fail("n_anomalies", f"at most {n_test // 30} for n_test={n_test}", str(n_anomalies), "Use fewer anomalies or a longer test part.")
    t_test = np.arange(n_train, n, dtype=np.float64)
    for i in range(n_anomalies):
        kind = kinds[i % len(kinds)]
        length = 1 + int(rng.integers(0, 3)) if kind == "spike" else int(rng.integers(15, min(80, slot - 10) + 1))
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
