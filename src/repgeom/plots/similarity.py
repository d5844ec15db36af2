"""Representation similarity over training: CKA heatmaps, CKA to the final checkpoint, α-ReQ.

Each function takes a gathered dataset (dims ``step``, ``corpus``, ``layer`` …, with
``step_number`` on ``step`` where known) and plots its values as they are.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.ticker import MaxNLocator

from repgeom.plots.common import (
    duplicate_labels,
    format_step_axis,
    legend_right,
    mark_duplicates,
    shared_step_label,
    step_axis,
    step_positions,
    wrap_label,
)

ESTIMATORS = {"cka_layers": "standard", "cka_layers_debiased": "debiased"}
TO_FINAL = {"cka_to_final": "standard", "cka_to_final_debiased": "debiased"}


def heatmap_steps(steps: Sequence[str], count: int = 4) -> list[str]:
    """Up to ``count`` checkpoints spread evenly over ``steps`` (in training order), always the
    first and the last."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    steps = [str(s) for s in steps]
    if not steps:
        raise ValueError("no checkpoints to choose from")
    if count == 1:
        return [steps[-1]]
    idx = np.unique(np.round(np.linspace(0, len(steps) - 1, min(count, len(steps)))).astype(int))
    return [steps[i] for i in idx]


def _layer_colors(layers: Sequence[int]) -> list[tuple[float, ...]]:
    cmap = plt.get_cmap("plasma")
    return [cmap(0.9 * i / max(1, len(layers) - 1)) for i in range(len(layers))]


def _n_tokens(ds: xr.Dataset, **where: str) -> str:
    if "n_tokens" not in ds:
        return ""
    n = ds["n_tokens"].sel({k: v for k, v in where.items() if k in ds["n_tokens"].dims})
    return f" · n = {int(n)}"


def cka_heatmaps(
    ds: xr.Dataset,
    corpus: str,
    steps: Sequence[str] | None = None,
    variables: Sequence[str] = tuple(ESTIMATORS),
    title: str = "",
) -> plt.Figure:
    """CKA between every pair of layers (``layer`` × ``layer_other``), one column per checkpoint
    of ``steps`` (default: :func:`heatmap_steps`, the last included), one row per variable
    (standard, debiased), on one colour scale [0, 1]. ``ax.images[0]`` of each panel holds the
    dataset's values, row = layer."""
    steps = heatmap_steps(ds["step"].values) if steps is None else [str(s) for s in steps]
    fig, axes = plt.subplots(
        len(variables),
        len(steps),
        figsize=(2.6 * len(steps) + 0.8, 2.5 * len(variables)),
        squeeze=False,
        constrained_layout=True,
    )
    layers = ds["layer"].values
    others = ds["layer_other"].values
    image = None
    for r, var in enumerate(variables):
        for c, step in enumerate(steps):
            ax = axes[r][c]
            values = ds[var].sel(step=step, corpus=corpus).transpose("layer", "layer_other")
            image = ax.imshow(
                values.values,
                origin="lower",
                vmin=0.0,
                vmax=1.0,
                cmap="viridis",
                interpolation="nearest",
            )
            ax.set_xticks(range(len(others)), [str(v) for v in others], fontsize=7)
            ax.set_yticks(range(len(layers)), [str(v) for v in layers], fontsize=7)
            label = ESTIMATORS.get(var, var)
            ax.set_title(f"{step} · {label}{_n_tokens(ds, step=step, corpus=corpus)}", fontsize=8)
            if r == len(variables) - 1:
                ax.set_xlabel("layer", fontsize=8)
            if c == 0:
                ax.set_ylabel("layer", fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.8, label="linear CKA", extend="min")
    if title:
        fig.suptitle(f"{title} · {corpus}", fontsize=9)
    return fig


def cka_to_final_by_step(
    ds: xr.Dataset, variables: Sequence[str] = tuple(TO_FINAL), title: str = ""
) -> plt.Figure:
    """CKA of each layer with the same layer of the final checkpoint against training step
    (symlog x, an ordinal axis when a checkpoint has no step number), one line per layer, one
    column per corpus, one row per variable (standard, debiased). ``ax.get_lines()[i]`` of each
    panel is layer ``ds.layer[i]``."""
    corpora = [str(c) for c in ds["corpus"].values]
    fig, axes = plt.subplots(
        len(variables),
        len(corpora),
        figsize=(4.0 * len(corpora) + 1.2, 3.0 * len(variables)),
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
    ticks = step_axis(ds)
    x = step_positions(ds, ticks is not None)
    layers = [int(v) for v in ds["layer"].values]
    colors = _layer_colors(layers)
    for r, var in enumerate(variables):
        for c, corpus in enumerate(corpora):
            ax = axes[r][c]
            for layer, color in zip(layers, colors, strict=True):
                y = ds[var].sel(corpus=corpus, layer=layer).values
                ax.plot(x, y, marker="o", ms=2.5, color=color, label=f"layer {layer}")
                mark_duplicates(ax, x, y, duplicate_labels(ds), color)
            format_step_axis(ax, ticks, xlabel=False)
            label = TO_FINAL.get(var, var)
            name = f"{title + ' · ' if title else ''}{corpus} · {label}"
            ax.set_title(wrap_label(name, 3.6, 9), fontsize=9)
            ax.grid(alpha=0.3)
        axes[r][0].set_ylabel(f"CKA to final ({TO_FINAL.get(var, var)})", fontsize=8)
    shared_step_label(fig, ticks)
    legend_right(axes[0][-1], fontsize=6)
    return fig


def alpha_req_by_step(
    ds: xr.Dataset, var: str = "alpha_req", positions: str = "all", title: str = ""
) -> plt.Figure:
    """α-ReQ (the eigenspectrum's decay exponent) of each layer against training step, one line
    per layer, one panel per corpus, from the gathered anisotropy dataset (dims step, corpus,
    [positions,] layer; the token set ``positions`` where the dataset has that dim).
    ``ax.get_lines()[i]`` is layer ``ds.layer[i]``."""
    if var not in ds:
        raise KeyError(
            f"the dataset has no variable {var!r} (it has {sorted(ds.data_vars)}): α-ReQ comes "
            "from the gathered anisotropy dataset of a geometry job that computes it"
        )
    da = ds[var]
    if "positions" in da.dims:
        da = da.sel(positions=positions)
    corpora = [str(c) for c in ds["corpus"].values]
    height = 3.2
    fig, axes = plt.subplots(
        1,
        len(corpora),
        figsize=(4.0 * len(corpora) + 1.2, height),
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
    ticks = step_axis(ds)
    x = step_positions(ds, ticks is not None)
    layers = [int(v) for v in ds["layer"].values]
    colors = _layer_colors(layers)
    for ax, corpus in zip(axes[0], corpora, strict=True):
        for layer, color in zip(layers, colors, strict=True):
            y = da.sel(corpus=corpus, layer=layer).values
            ax.plot(x, y, marker="o", ms=2.5, color=color, label=f"layer {layer}")
            mark_duplicates(ax, x, y, duplicate_labels(ds), color)
        format_step_axis(ax, ticks, xlabel=False)
        where = f"{corpus} · {positions}" if "positions" in ds[var].dims else corpus
        ax.set_title(wrap_label(f"{title + ' · ' if title else ''}{where}", 3.6, 9), fontsize=9)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=6))
        ax.grid(alpha=0.3)
    label = ds[var].attrs.get("long_name", "α-ReQ")
    axes[0][0].set_ylabel(wrap_label(label, 0.6 * height, 8), fontsize=8)
    shared_step_label(fig, ticks)
    legend_right(axes[0][-1], fontsize=6)
    return fig
