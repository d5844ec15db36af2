"""Where anisotropy comes from, over training: rogue dimensions, massive activations and the
geometry of frequency buckets (:mod:`repgeom.metrics.origins`).

Each function takes a gathered dataset (dims ``step``, ``corpus``, ``positions``, ``layer`` …,
with ``step_number`` on ``step`` where known) and draws one panel per corpus; the token set is
``positions`` (default: the dataset's first). Lines are layers coloured from the embeddings
(dark) to the last layer (bright), or frequency buckets from the rarest (dark) to the most
frequent (bright); steps are on a symlog axis (an ordinal one when a checkpoint label has no
step number), kept duplicates drawn hollow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.ticker import FormatStrFormatter, LogLocator, MaxNLocator, NullFormatter

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

MIN_COSINE = 0.01  # below this mean cosine there is no anisotropy to share out: not drawn
MIN_TOKENS = 32  # a bucket's spectrum from fewer tokens is not drawn (anisotropy ≥ 1/(n − 1))


def _colors(n: int, cmap: str) -> list[tuple[float, ...]]:
    return [plt.get_cmap(cmap)(0.9 * i / max(1, n - 1)) for i in range(n)]


def _token_set(ds: xr.Dataset, positions: str | None) -> tuple[xr.Dataset, str]:
    """The dataset at one token set (default: its first) and that set's name."""
    if "positions" not in ds.dims:
        return ds, ""
    name = str(ds["positions"].values[0]) if positions is None else positions
    return ds.sel(positions=name), name


def _panels(rows: int, columns: int, height: float = 2.8) -> tuple[plt.Figure, np.ndarray]:
    return plt.subplots(
        rows,
        columns,
        figsize=(3.6 * columns + 1.4, height * rows + 0.6),
        squeeze=False,
        sharex="col",
        layout="constrained",
    )


def _title(title: str, *parts: str) -> str:
    return " · ".join(p for p in (title, *parts) if p)


def rogue_share(ds: xr.Dataset, k: int) -> xr.DataArray:
    """Share of the mean cosine carried by the top-``k`` dimensions by contribution: the sum of
    their contributions C_i over the mean cosine Σ C_i (NaN where it is below
    :data:`MIN_COSINE`)."""
    top = ds["rogue_contribution"].sel(rogue_rank=slice(1, k)).sum("rogue_rank")
    return (top / ds["mean_cosine"]).where(ds["mean_cosine"] >= MIN_COSINE)


def _by_step(
    axes: np.ndarray,
    ds: xr.Dataset,
    values: dict[str, xr.DataArray],
    ylabels: Sequence[str],
    title: str,
    where: str,
) -> None:
    """Rows of ``values`` (name -> array with dims step, corpus, layer), one line per layer,
    one column per corpus; the legend right of the first row."""
    ticks = step_axis(ds)
    x = step_positions(ds, ticks is not None)
    layers = [int(v) for v in ds["layer"].values]
    colors = _colors(len(layers), "plasma")
    for r, (name, da) in enumerate(values.items()):
        for c, corpus in enumerate(str(v) for v in ds["corpus"].values):
            ax = axes[r][c]
            for layer, color in zip(layers, colors, strict=True):
                y = da.sel(corpus=corpus, layer=layer).values
                ax.plot(x, y, marker="o", ms=2.5, color=color, label=f"layer {layer}")
                mark_duplicates(ax, x, y, duplicate_labels(ds), color)
            format_step_axis(ax, ticks, xlabel=False)
            ax.set_title(_title(title, corpus, where, name), fontsize=8)
            ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
            ax.grid(alpha=0.3)
        axes[r][0].set_ylabel(wrap_label(ylabels[r], 2.4, 8), fontsize=8)
    legend_right(axes[0][-1], fontsize=6)
    shared_step_label(axes[0][0].get_figure(), ticks)


def rogue_share_by_step(
    ds: xr.Dataset, ks: Sequence[int] = (1, 3), positions: str | None = None, title: str = ""
) -> plt.Figure:
    """Share of each layer's mean cosine carried by its top-k rogue dimensions (:func:`rogue_share`)
    against training step: one row per k of ``ks`` (those ≤ the ranks stored), one column per
    corpus, one line per layer (``ax.get_lines()[i]`` of a panel is layer ``ds.layer[i]``, the
    hollow duplicate markers after them), from the gathered dimensions dataset."""
    ds, where = _token_set(ds, positions)
    ks = [k for k in ks if k <= ds.sizes["rogue_rank"]]
    fig, axes = _panels(len(ks), ds.sizes["corpus"])
    values = {f"top {k}": rogue_share(ds, k) for k in ks}
    labels = [f"share of the mean cosine in the top {k} dimension{'s' * (k > 1)}" for k in ks]
    _by_step(axes, ds, values, labels, title, where)
    return fig


def massive_ratio_by_step(ds: xr.Dataset, title: str = "") -> plt.Figure:
    """max|x| / median|x| of each layer against training step (log y): one row per token set,
    one column per corpus, one line per layer, from the gathered dimensions dataset; the
    relative threshold of a massive activation (the dataset's ``relative`` attr) dashed where
    the ratios come within a factor 10 of it."""
    sets = [str(p) for p in ds["positions"].values] if "positions" in ds.dims else [""]
    fig, axes = _panels(len(sets), ds.sizes["corpus"])
    for r, name in enumerate(sets):
        sub = ds.sel(positions=name) if name else ds
        label = "max |x| / median |x|"
        _by_step(axes[r : r + 1], sub, {"": sub["massive_ratio"]}, [label], title, name)
    relative = ds.attrs.get("relative")
    top = float(ds["massive_ratio"].max()) if ds["massive_ratio"].notnull().any() else 0.0
    for ax in axes.ravel():
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0)))
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        if relative is not None and top >= float(relative) / 10:
            ax.axhline(float(relative), color="grey", ls="--", lw=0.8)
    for ax in axes[1:, -1]:
        legend = ax.get_legend()
        if legend is not None:
            legend.remove()
    return fig


def _per_bucket(ds: xr.Dataset, var: str, corpus: str) -> np.ndarray:
    """A variable of the buckets alone (``count_low``, ``count_high``) for one corpus: the
    same at every step of a gathered dataset."""
    da = ds[var]
    if "corpus" in da.dims:
        da = da.sel(corpus=corpus)
    return da.isel({d: 0 for d in da.dims if d != "bucket"}).values


def bucket_labels(ds: xr.Dataset, corpus: str) -> list[str]:
    """The train counts of each bucket of ``corpus`` as an integer range, [count_low,
    count_high) and the last one closed: 'unseen' for bucket 0, '∅' where no integer falls."""
    low, high = (_per_bucket(ds, v, corpus) for v in ("count_low", "count_high"))
    buckets = [int(b) for b in ds["bucket"].values]
    out = []
    for i, b in enumerate(buckets):
        first = math.ceil(low[i])
        last = math.floor(high[i]) if i == len(buckets) - 1 else math.ceil(high[i]) - 1
        if b == 0:
            out.append("unseen")
        elif last < first:
            out.append("∅")
        else:
            out.append(f"{first}" if last == first else f"{first}–{last}")
    return out


def _bucket_values(ds: xr.Dataset, var: str) -> xr.DataArray:
    """``var`` where its bucket holds the tokens to draw it (anisotropy: MIN_TOKENS in its
    spectrum; mean cosine: 2)."""
    if var in ("anisotropy", "rankme"):
        return ds[var].where(ds["n_spectrum_tokens"] >= MIN_TOKENS)
    return ds[var].where(ds["n_tokens"] >= 2)


def frequency_at_step(
    ds: xr.Dataset,
    step: str | None = None,
    variables: Sequence[str] = ("anisotropy", "mean_cosine"),
    positions: str | None = None,
    title: str = "",
) -> plt.Figure:
    """Each variable by train-count bucket (rarest left) at one checkpoint (default: the last),
    one line per layer, one row per variable, one column per corpus, from the gathered
    frequency dataset; buckets of too few tokens are gaps (:func:`_bucket_values`)."""
    ds, where = _token_set(ds, positions)
    step = str(ds["step"].values[-1]) if step is None else step
    at = ds.sel(step=step)
    corpora = [str(c) for c in ds["corpus"].values]
    fig, axes = _panels(len(variables), len(corpora))
    layers = [int(v) for v in ds["layer"].values]
    colors = _colors(len(layers), "plasma")
    x = np.arange(ds.sizes["bucket"])
    for r, var in enumerate(variables):
        values = _bucket_values(at, var)
        for c, corpus in enumerate(corpora):
            ax = axes[r][c]
            for layer, color in zip(layers, colors, strict=True):
                y = values.sel(corpus=corpus, layer=layer).values
                ax.plot(x, y, marker="o", ms=2.5, color=color, label=f"layer {layer}")
            ax.set_xticks(x, bucket_labels(ds, corpus), rotation=45, ha="right", fontsize=6)
            ax.set_title(_title(title, corpus, where, step), fontsize=8)
            ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
            ax.grid(alpha=0.3)
            if r == len(variables) - 1:
                ax.set_xlabel("train count of the token (bucket)", fontsize=8)
        label = ds[var].attrs.get("long_name", var)
        axes[r][0].set_ylabel(wrap_label(label, 2.4, 8), fontsize=8)
    legend_right(axes[0][-1], fontsize=6)
    return fig


def pick_layers(layers: Sequence[int], count: int = 3) -> list[int]:
    """Up to ``count`` layers spread evenly over ``layers``, the first and the last included."""
    layers = [int(v) for v in layers]
    idx = np.unique(np.round(np.linspace(0, len(layers) - 1, min(count, len(layers)))))
    return [layers[int(i)] for i in idx]


def frequency_by_step(
    ds: xr.Dataset,
    var: str = "anisotropy",
    layers: Sequence[int] | None = None,
    positions: str | None = None,
    title: str = "",
) -> plt.Figure:
    """``var`` of each train-count bucket against training step at a few ``layers`` (default:
    :func:`pick_layers`): one line per bucket drawn (rarest dark, most frequent bright), one
    column per layer, one row per corpus (its buckets' counts in the legend at its right)."""
    ds, where = _token_set(ds, positions)
    layers = pick_layers(ds["layer"].values) if layers is None else list(layers)
    corpora = [str(c) for c in ds["corpus"].values]
    fig, axes = _panels(len(corpora), len(layers))
    ticks = step_axis(ds)
    x = step_positions(ds, ticks is not None)
    values = _bucket_values(ds, var)
    buckets = [int(b) for b in ds["bucket"].values]
    colors = _colors(len(buckets), "viridis")
    for r, corpus in enumerate(corpora):
        names = bucket_labels(ds, corpus)
        for c, layer in enumerate(layers):
            ax = axes[r][c]
            for b, name, color in zip(buckets, names, colors, strict=True):
                y = values.sel(corpus=corpus, layer=layer, bucket=b).values
                if np.isfinite(y).any():
                    ax.plot(x, y, marker="o", ms=2.5, color=color, label=f"{name} ({b})")
            format_step_axis(ax, ticks, xlabel=False)
            ax.set_title(_title(title, corpus, where, f"layer {layer}"), fontsize=8)
            ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
            ax.grid(alpha=0.3)
        label = f"{ds[var].attrs.get('long_name', var)} · {corpus}"
        axes[r][0].set_ylabel(wrap_label(label, 2.4, 8), fontsize=8)
        if axes[r][-1].get_lines():
            legend_right(axes[r][-1], fontsize=6, title="train count (bucket)", title_fontsize=6)
    shared_step_label(fig, ticks)
    return fig
