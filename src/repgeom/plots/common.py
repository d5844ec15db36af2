"""Shared figure helpers: a headless backend, step colours, atomic saving."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from repgeom.io import atomic_path


def step_colors(ds: xr.Dataset, cmap: str = "viridis") -> list[tuple[float, ...]]:
    """One colour per checkpoint, ordered by training step (labels without a number last)."""
    n = ds.sizes["step"]
    return [plt.get_cmap(cmap)(x) for x in np.linspace(0.0, 0.9, n)]


def save_figure(fig: plt.Figure, *paths: str | Path) -> None:
    """Save a figure to each path (format from the suffix), atomically, then close it."""
    for path in paths:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=150, bbox_inches="tight", format=Path(path).suffix[1:])
    plt.close(fig)
