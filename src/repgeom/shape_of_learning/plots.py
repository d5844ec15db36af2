"""Shape-of-Learning figures and tables: per-layer profiles over checkpoints, ID over training."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from repgeom.metrics.estimators import repeat_spread
from repgeom.plots.common import (
    duplicate_labels,
    format_step_axis,
    integer_ticks,
    legend_right,
    mark_duplicates,
    shared_step_label,
    step_axis,
    step_colors,
    step_label,
    step_positions,
    wrap_label,
)

POSITION_LABELS = {"all": "all positions", "no_first": "without position 0"}


def _panels(datasets: dict[str, xr.Dataset]) -> list[tuple[str, str]]:
    return [(m, str(c)) for m, ds in datasets.items() for c in ds["corpus"].values]


def _mean_spread(da: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray | None]:
    """Mean and spread (:func:`repeat_spread`) over the ``repeat`` dim; no spread without it."""
    if "repeat" in da.dims:
        return da.mean("repeat"), da.reduce(repeat_spread, dim="repeat")
    return da, None


def by_layer(
    datasets: dict[str, xr.Dataset],
    var: str,
    positions: list[str] | None = None,
    companion: tuple[str, str] | None = None,
    flag: str | None = None,
) -> plt.Figure:
    """``var`` against layer, one line per checkpoint (colour = step), bands over repeats.

    Rows: token positions used (all / without position 0); columns: model × corpus.
    ``companion`` (variable, its error): drawn dashed with a ± error band (GRIDE next to
    TwoNN); ``flag``: a 0/1 variable whose layers are ringed in red on the ``var`` line.
    """
    panels = _panels(datasets)
    first = next(iter(datasets.values()))
    rows = positions or [str(p) for p in first["positions"].values]
    fig, axes = plt.subplots(
        len(rows),
        len(panels),
        figsize=(3.6 * len(panels) + 1.0 * len(datasets), 3.0 * len(rows)),
        squeeze=False,
        sharey="row",
        layout="constrained",
    )
    for j, (model, corpus) in enumerate(panels):
        ds = datasets[model]
        colors = step_colors(ds)
        for i, pos in enumerate(rows):
            ax = axes[i][j]
            mean, spread = _mean_spread(ds[var].sel(corpus=corpus, positions=pos))
            for s, step in enumerate(ds["step"].values):
                y = mean.sel(step=step)
                ax.plot(ds["layer"], y, marker="o", ms=2.5, color=colors[s], label=str(step))
                if spread is not None:
                    e = spread.sel(step=step)
                    ax.fill_between(ds["layer"], y - e, y + e, color=colors[s], alpha=0.15, lw=0)
                if companion is not None:
                    name, error = companion
                    sel = {"corpus": corpus, "positions": pos, "step": step}
                    c = _mean_spread(ds[name].sel(sel))[0]
                    ce = _mean_spread(ds[error].sel(sel))[0]
                    ax.plot(ds["layer"], c, ls="--", marker="s", ms=2, color=colors[s])
                    ax.fill_between(ds["layer"], c - ce, c + ce, color=colors[s], alpha=0.1, lw=0)
                if flag is not None:
                    flagged = ds[flag].sel(corpus=corpus, positions=pos, step=step).values > 0
                    ax.scatter(
                        ds["layer"].values[flagged],
                        np.asarray(y)[flagged],
                        s=60,
                        facecolors="none",
                        edgecolors="red",
                        zorder=5,
                    )
            name = wrap_label(f"{model} · {corpus}", 3.2, 9)
            ax.set_title(f"{name}\n{POSITION_LABELS.get(pos, pos)}", fontsize=9)
            ax.grid(alpha=0.3)
            integer_ticks(ax.xaxis)
            if i == len(rows) - 1:
                ax.set_xlabel("layer (0 = embeddings)")
        if j == len(panels) - 1 or panels[j + 1][0] != model:  # the model's last column
            legend_right(axes[0][j], fontsize=6, title=f"{model}\ncheckpoint", title_fontsize=7)
    label = wrap_label(first[var].attrs.get("long_name", var), 2.2, 8)
    for i in range(len(rows)):
        axes[i][0].set_ylabel(label, fontsize=8)
    return fig


def by_step(datasets: dict[str, xr.Dataset], var: str, positions: str = "all") -> plt.Figure:
    """``var`` against training step (symlog x, so step 0 shows; an ordinal axis by label when
    a checkpoint has no step number), one line per layer, bands over repeats: the two-phase
    'inflation then compression' picture for intrinsic dimension.
    """
    panels = _panels(datasets)
    fig, axes = plt.subplots(
        1, len(panels), figsize=(3.8 * len(panels) + 1.0, 3.2), squeeze=False, layout="constrained"
    )
    kinds = {m: step_axis(ds) for m, ds in datasets.items()}  # None: a symlog step axis
    shared = len({ticks is None for ticks in kinds.values()}) == 1  # one kind: one x label
    for ax, (model, corpus) in zip(axes[0], panels, strict=True):
        ds = datasets[model]
        ticks = kinds[model]
        steps = step_positions(ds, ticks is not None)
        mean, spread = _mean_spread(ds[var].sel(corpus=corpus, positions=positions))
        cmap = plt.get_cmap("plasma")
        layers = ds["layer"].values
        for li, layer in enumerate(layers):
            color = cmap(0.9 * li / max(1, len(layers) - 1))
            y = mean.sel(layer=layer).values
            ax.plot(steps, y, marker="o", ms=2.5, color=color, label=f"layer {layer}")
            mark_duplicates(ax, steps, y, duplicate_labels(ds), color)
            if spread is not None:
                e = spread.sel(layer=layer).values
                ax.fill_between(steps, y - e, y + e, color=color, alpha=0.15, lw=0)
        format_step_axis(ax, ticks, xlabel=False)
        if not shared:
            ax.set_xlabel(wrap_label(step_label(ticks), 3.2, 8), fontsize=8)
        name = f"{model} · {corpus} · {POSITION_LABELS.get(positions, positions)}"
        ax.set_title(wrap_label(name, 3.4, 9), fontsize=9)
        ax.grid(alpha=0.3)
    label = next(iter(datasets.values()))[var].attrs.get("long_name", var)
    axes[0][0].set_ylabel(wrap_label(label, 2.2, 8), fontsize=8)
    if shared:
        shared_step_label(fig, next(iter(kinds.values())))
    legend_right(axes[0][-1], fontsize=6)
    return fig


def metric_table(datasets: dict[str, xr.Dataset], variables: list[str]) -> list[dict]:
    """Rows model × step × corpus × positions × layer with each variable (mean and, as
    ``<variable>_std``, the spread :func:`repeat_spread` over repeats where there are repeats)."""
    rows = []
    for model, ds in datasets.items():
        for step in ds["step"].values:
            for corpus in ds["corpus"].values:
                for pos in ds["positions"].values:
                    for layer in ds["layer"].values:
                        row = {
                            "model": model,
                            "step": str(step),
                            "corpus": str(corpus),
                            "positions": str(pos),
                            "layer": int(layer),
                        }
                        for var in variables:
                            da = ds[var].sel(step=step, corpus=corpus, positions=pos, layer=layer)
                            if "repeat" in da.dims:
                                row[var] = float(da.mean())
                                row[f"{var}_std"] = float(repeat_spread(da.values))
                            else:
                                row[var] = float(da)
                        rows.append(row)
    return rows


def by_scale(ds: xr.Dataset, corpus: str, positions: str = "all", ncols: int = 6) -> plt.Figure:
    """GRIDE intrinsic dimension against neighbourhood scale (n₁, log₂ axis): one panel per
    layer, one line per checkpoint (colour = step), band = ± GRIDE's statistical error
    (mean over subsamples); the line is the mean over subsamples."""
    layers = ds["layer"].values
    ncols = min(ncols, len(layers))
    nrows = -(-len(layers) // ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(2.6 * ncols + 1.0, 2.3 * nrows + 0.4),
        squeeze=False,
        sharex=True,
        layout="constrained",
    )
    colors = step_colors(ds)
    n1 = ds["scale"].values
    for k, layer in enumerate(layers):
        ax = axes[k // ncols][k % ncols]
        sel = {"corpus": corpus, "positions": positions, "layer": layer}
        mean = _mean_spread(ds["gride"].sel(sel))[0]
        error = _mean_spread(ds["gride_error"].sel(sel))[0]
        for s, step in enumerate(ds["step"].values):
            y, e = mean.sel(step=step).values, error.sel(step=step).values
            ax.plot(n1, y, marker="o", ms=2.5, color=colors[s], label=str(step))
            ax.fill_between(n1, y - e, y + e, color=colors[s], alpha=0.15, lw=0)
        ax.set_xscale("log", base=2)
        ax.set_title(f"layer {layer}", fontsize=8)
        ax.grid(alpha=0.3)
    for k in range(len(layers), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
        above = axes[k // ncols - 1][k % ncols]  # now the lowest panel of its column
        above.xaxis.set_tick_params(labelbottom=True)
        above.set_xlabel("n₁ (n₂ = 2·n₁)")
    for ax in axes[-1]:
        ax.set_xlabel("n₁ (n₂ = 2·n₁)")
    for row in axes:
        row[0].set_ylabel("GRIDE ID", fontsize=8)
    legend_right(axes[0][-1], fontsize=6, title="checkpoint", title_fontsize=7)
    model = str(ds["model"].values) if "model" in ds.coords else ""
    fig.suptitle(f"{model} · {corpus} · {POSITION_LABELS.get(positions, positions)}", fontsize=9)
    return fig
