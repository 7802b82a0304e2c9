"""A grid of generated images with their masks outlined."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["save_grid"]


def save_grid(
    images: np.ndarray,
    masks: np.ndarray,
    path: str | Path,
    *,
    titles=None,
    columns: int = 8,
    normal: np.ndarray | None = None,
) -> Path:
    """Write a PNG grid: each generated image (uint8 (n, 3, H, W)) with its mask outlined in red;
    with ``normal`` given, each image is preceded by the normal image it edits."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(images)
    per = 2 if normal is not None else 1
    cols = columns * per
    rows = int(np.ceil(n / columns))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.2, rows * 1.3), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i in range(n):
        r, c = divmod(i, columns)
        if normal is not None:
            axes[r, c * per].imshow(normal[i].transpose(1, 2, 0))
            axes[r, c * per].set_title("normal", fontsize=6)
        ax = axes[r, c * per + per - 1]
        ax.imshow(images[i].transpose(1, 2, 0))
        if masks[i].any():
            ax.contour(masks[i] > 0, levels=[0.5], colors="red", linewidths=0.6)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=6)
    fig.tight_layout(pad=0.2)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
