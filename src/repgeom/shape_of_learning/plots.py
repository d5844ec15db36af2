"""Shape-of-Learning figures and tables: per-layer profiles over checkpoints, ID over training."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.ticker import MaxNLocator

from repgeom.io import write_text
from repgeom.plots.common import step_colors

POSITION_LABELS = {"all": "all positions", "no_first": "without position 0"}


def _panels(datasets: dict[str, xr.Dataset]) -> list[tuple[str, str]]:
    return [(m, str(c)) for m, ds in datasets.items() for c in ds["corpus"].values]


def _mean_spread(da: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray | None]:
    if "repeat" in da.dims:
        return da.mean("repeat"), da.std("repeat")
    return da, None


def by_layer(
    datasets: dict[str, xr.Dataset], var: str, positions: list[str] | None = None
) -> plt.Figure:
    """``var`` against layer, one line per checkpoint (colour = step), bands over repeats.

    Rows: token positions used (all / without position 0); columns: model × corpus.
    """
    panels = _panels(datasets)
    first = next(iter(datasets.values()))
    rows = positions or [str(p) for p in first["positions"].values]
    fig, axes = plt.subplots(
        len(rows),
        len(panels),
        figsize=(3.6 * len(panels), 3.0 * len(rows)),
        squeeze=False,
        sharey="row",
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
            ax.set_title(f"{model} · {corpus}\n{POSITION_LABELS.get(pos, pos)}", fontsize=9)
            ax.grid(alpha=0.3)
            if i == len(rows) - 1:
                ax.set_xlabel("layer (0 = embeddings)")
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes[0][j].legend(fontsize=6, ncol=2, title="checkpoint", title_fontsize=7)
    for i in range(len(rows)):
        axes[i][0].set_ylabel(first[var].attrs.get("long_name", var), fontsize=8)
    fig.tight_layout()
    return fig


def by_step(datasets: dict[str, xr.Dataset], var: str, positions: str = "all") -> plt.Figure:
    """``var`` against training step (symlog x, so step 0 shows), one line per layer, bands over
    repeats: the two-phase 'inflation then compression' picture for intrinsic dimension.
    """
    panels = _panels(datasets)
    fig, axes = plt.subplots(1, len(panels), figsize=(3.8 * len(panels), 3.2), squeeze=False)
    for ax, (model, corpus) in zip(axes[0], panels, strict=True):
        ds = datasets[model]
        steps = ds["step_number"].values
        keep = np.isfinite(steps)
        mean, spread = _mean_spread(ds[var].sel(corpus=corpus, positions=positions))
        cmap = plt.get_cmap("plasma")
        layers = ds["layer"].values
        for li, layer in enumerate(layers):
            color = cmap(0.9 * li / max(1, len(layers) - 1))
            y = mean.sel(layer=layer).values[keep]
            ax.plot(steps[keep], y, marker="o", ms=2.5, color=color, label=f"layer {layer}")
            if spread is not None:
                e = spread.sel(layer=layer).values[keep]
                ax.fill_between(steps[keep], y - e, y + e, color=color, alpha=0.15, lw=0)
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlabel("training step")
        ax.set_title(
            f"{model} · {corpus} · {POSITION_LABELS.get(positions, positions)}", fontsize=9
        )
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(
        next(iter(datasets.values()))[var].attrs.get("long_name", var), fontsize=8
    )
    axes[0][-1].legend(fontsize=6, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    return fig


def metric_table(datasets: dict[str, xr.Dataset], variables: list[str]) -> list[dict]:
    """Rows model × step × corpus × positions × layer with each variable (mean and std over
    repeats where there are repeats)."""
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
                                row[f"{var}_std"] = float(da.std())
                            else:
                                row[var] = float(da)
                        rows.append(row)
    return rows


def write_table(
    rows: list[dict],
    csv_path: str | Path,
    tex_path: str | Path,
    meta: Mapping[str, str] | None = None,
) -> None:
    """Write rows as CSV (full precision) and as a LaTeX tabular (4 significant digits).

    ``meta`` (provenance) heads both files as comment lines.
    """
    columns = list(rows[0])

    def fmt(v: object) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = [",".join(columns)] + [",".join(str(r[c]) for c in columns) for r in rows]
    write_text(csv_path, "\n".join(lines) + "\n", meta)
    head = " & ".join(c.replace("_", r"\_") for c in columns)
    body = [" & ".join(fmt(r[c]).replace("_", r"\_") for c in columns) + r" \\" for r in rows]
    tex = [
        r"\begin{tabular}{" + "l" * 4 + "r" * (len(columns) - 4) + "}",
        r"\hline",
        head + r" \\",
        r"\hline",
        *body,
        r"\hline",
        r"\end{tabular}",
    ]
    write_text(tex_path, "\n".join(tex) + "\n", meta)
