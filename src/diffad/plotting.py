"""Figures (matplotlib, imported lazily, non-interactive backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .data.series import runs

__all__ = ["plot_detection"]


def spans(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index pairs of the runs of 1s."""
    starts, ends = runs(flags)
    return list(zip(starts.tolist(), (ends + 1).tolist(), strict=True))


def plot_detection(
    values: np.ndarray,
    scores: np.ndarray,
    preds: np.ndarray,
    path: str | Path,
    *,
    labels: np.ndarray | None = None,
    threshold: float | None = None,
    index=None,
    channels: list[str] | None = None,
    max_channels: int = 12,
    title: str = "diffad detection",
) -> Path:
    """Channels (standardised, stacked), the anomaly score with its threshold, and the detected and
    true anomaly segments, one panel each. Written atomically as PNG; returns the path."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from .fsio import atomic_write_bytes

    values = np.asarray(values, dtype=float)
    n, K = values.shape
    x = np.arange(n) if index is None else np.asarray(index)
    names = list(channels) if channels is not None else [f"ch{i}" for i in range(K)]
    fig, axes = plt.subplots(3, 1, figsize=(13, 8), sharex=True, gridspec_kw={"height_ratios": [3, 1.6, 0.7]})
    ax = axes[0]
    shown = min(K, max_channels)
    z = (values[:, :shown] - np.nanmean(values[:, :shown], 0)) / (np.nanstd(values[:, :shown], 0) + 1e-12)
    for k in range(shown):
        ax.plot(x, z[:, k] + 4 * (shown - 1 - k), lw=0.6, label=names[k])
    ax.set_yticks([4 * (shown - 1 - k) for k in range(shown)], names[:shown], fontsize=7)
    ax.set_title(title + (f"  ({shown} of {K} channels)" if shown < K else ""))
    ax = axes[1]
    ax.plot(x, scores, lw=0.7, color="black", label="score")
    if threshold is not None:
        ax.axhline(threshold, color="tab:red", lw=0.8, ls="--", label="threshold")
    ax.set_ylabel("score")
    ax.legend(loc="upper right", fontsize=7)
    ax = axes[2]
    for s, e in spans(preds):
        ax.axvspan(x[s], x[min(e, n - 1)], ymin=0.5, ymax=1.0, color="tab:red", alpha=0.8, lw=0)
    if labels is not None:
        for s, e in spans(labels):
            ax.axvspan(x[s], x[min(e, n - 1)], ymin=0.0, ymax=0.5, color="tab:blue", alpha=0.8, lw=0)
            for a in axes[:2]:
                a.axvspan(x[s], x[min(e, n - 1)], color="tab:blue", alpha=0.12, lw=0)
    ax.set_yticks([0.25, 0.75], ["true" if labels is not None else "", "detected"], fontsize=8)
    ax.set_ylim(0, 1)
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)
