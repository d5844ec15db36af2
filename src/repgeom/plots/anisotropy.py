"""Anisotropy by layer: one line per checkpoint, one panel per corpus."""

from __future__ import annotations

import matplotlib.pyplot as plt
import xarray as xr

from repgeom.plots.common import integer_ticks, legend_right, step_colors, wrap_label


def anisotropy_by_layer(ds: xr.Dataset, var: str = "anisotropy", title: str = "") -> plt.Figure:
    """Panels per corpus of ``var`` (dims step, corpus, layer) against layer, coloured by step."""
    corpora = list(ds["corpus"].values)
    fig, axes = plt.subplots(
        1,
        len(corpora),
        figsize=(4.2 * len(corpora), 3.4),
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
    colors = step_colors(ds)
    for ax, corpus in zip(axes[0], corpora, strict=True):
        for i, step in enumerate(ds["step"].values):
            y = ds[var].sel(step=step, corpus=corpus)
            ax.plot(ds["layer"], y, marker="o", ms=3, color=colors[i], label=str(step))
        ax.set_title(wrap_label(f"{title} · {corpus}" if title else str(corpus), 3.6, 12))
        ax.set_xlabel("layer (0 = embeddings)")
        integer_ticks(ax.xaxis)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(wrap_label(ds[var].attrs.get("long_name", var), 2.2, 10))
    legend_right(axes[0][-1], title="checkpoint", fontsize=7)
    return fig
