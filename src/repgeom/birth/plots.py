"""Figures of the "Birth of a Transformer" study, from the datasets of ``repgeom.birth``."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from repgeom.plots.common import legend_right

#: Memory probes in the paper's top-down order of learning, with their labels.
PROBES = (("probe_wo2", "$W_O^2$"), ("probe_wk2", "$W_K^2$"), ("probe_wk1", "$W_K^1$"))


def _check(datasets: dict[str, xr.Dataset], needed: tuple[str, ...]) -> None:
    if not datasets:
        raise ValueError("datasets is empty; pass a dict variant name → Dataset")
    for name, ds in datasets.items():
        missing = [v for v in needed if v not in ds.variables]
        if missing:
            raise ValueError(f"dataset of variant {name!r} lacks {missing}")


def _colors(n: int) -> list[tuple[float, ...]]:
    cmap = plt.get_cmap("tab10")
    return [cmap(i % 10) for i in range(n)]


def training_curves(datasets: dict[str, xr.Dataset]) -> plt.Figure:
    """Bigram loss, in-context loss and in-context accuracy (solid; OOD dashed) per variant."""
    panels = ("loss_bigram", "loss_head", "acc_incontext")
    _check(datasets, ("iteration", *panels))
    fig, axes = plt.subplots(1, 3, figsize=(12.5, 3.4), layout="constrained")
    for color, (name, ds) in zip(_colors(len(datasets)), datasets.items(), strict=True):
        it = ds["iteration"].values
        for ax, var in zip(axes, panels, strict=True):
            ax.plot(it, ds[var].values, color=color, label=name)
        if "acc_incontext_ood" in ds and np.isfinite(ds["acc_incontext_ood"].values).any():
            axes[2].plot(it, ds["acc_incontext_ood"].values, color=color, ls="--", lw=1)
    titles = ("loss, bigram positions", "loss, in-context positions", "in-context accuracy")
    for ax, var, title in zip(axes, panels, titles, strict=True):
        ax.set_title(title)
        ax.set_xlabel("iteration")
        units = next(iter(datasets.values()))[var].attrs.get("units", "")
        ax.set_ylabel("nat" if units == "nat" else "fraction")
        ax.grid(alpha=0.3)
    axes[2].set_ylim(-0.02, 1.02)
    axes[2].plot([], [], color="grey", ls="--", lw=1, label="held-out outputs (OOD)")
    legend_right(axes[2], fontsize=7)
    return fig


def memory_probe_curves(datasets: dict[str, xr.Dataset]) -> plt.Figure:
    """The three memory-recall probes against iteration, one panel per variant that has them.

    Lines in the paper's top-down order: W_O² (output memory), W_K² (layer-2 keys),
    W_K¹ (layer-1 positional keys). Variants whose probes are all NaN are left out.
    """
    _check(datasets, ("iteration", *(v for v, _ in PROBES)))
    shown = {
        n: ds
        for n, ds in datasets.items()
        if any(np.isfinite(ds[v].values).any() for v, _ in PROBES)
    }
    if not shown:
        raise ValueError("no variant has a finite memory probe (they need the simplified model)")
    fig, axes = plt.subplots(
        1,
        len(shown),
        figsize=(4.0 * len(shown) + 1.0, 3.3),
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
    colors = _colors(len(PROBES))
    for ax, (name, ds) in zip(axes[0], shown.items(), strict=True):
        for color, (var, label) in zip(colors, PROBES, strict=True):
            ax.plot(ds["iteration"].values, ds[var].values, color=color, label=label)
        ax.set_title(name)
        ax.set_xlabel("iteration")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("memory recall")
    legend_right(axes[0][-1], fontsize=8)
    return fig


def attention_maps(datasets: dict[str, xr.Dataset], max_positions: int | None = None) -> plt.Figure:
    """Attention maps (query × key) of every layer on one test sequence, one row per variant.

    Trigger positions are marked along both axes (red ticks); queries at in-context positions
    (trigger seen before) with a dot on the left edge. ``max_positions`` crops to the first
    positions.
    """
    _check(datasets, ("attention", "is_trigger", "occurrence"))
    n_layers = max(ds.sizes["layer"] for ds in datasets.values())
    fig, axes = plt.subplots(
        len(datasets),
        n_layers,
        figsize=(3.8 * n_layers, 3.6 * len(datasets)),
        squeeze=False,
        layout="constrained",
    )
    for row, (name, ds) in zip(axes, datasets.items(), strict=True):
        t = ds.sizes["query"] if max_positions is None else min(max_positions, ds.sizes["query"])
        trig = np.nonzero(ds["is_trigger"].values[:t])[0]
        incontext = np.nonzero(ds["occurrence"].values[:t] >= 2)[0]
        for j, ax in enumerate(row):
            if j >= ds.sizes["layer"]:
                ax.axis("off")
                continue
            a = ds["attention"].isel(layer=j).values[:t, :t]
            ax.imshow(a, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
            ax.plot(trig, np.full(trig.size, t - 0.5), "|", color="red", ms=5, clip_on=False)
            ax.plot(np.full(trig.size, -0.5), trig, "_", color="red", ms=5, clip_on=False)
            ax.plot(np.full(incontext.size, -2.0), incontext, ".", color="black", ms=2)
            ax.set_xlim(-2.5, t - 0.5)
            ax.set_ylim(t - 0.5, -0.5)
            ax.set_title(f"{name} · layer {int(ds['layer'].values[j])}", fontsize=9)
            ax.set_xlabel("key position")
            ax.set_ylabel("query position")
    return fig
