"""Checkpoint integrity over training: how far each checkpoint's weights are from the first,
the previous and the last, per tensor group, and the cosine to the first (from one model's
``weights`` dataset, :mod:`repgeom.activations.weights`). Duplicates are drawn hollow (artists
with gid 'duplicates'), discontinuities ringed in red (gid 'discontinuities'), partial
duplicates as purple hollow diamonds (gid 'partial_duplicates'); marked checkpoints are
labelled inside the axes (up to 8), legends sit below the axes."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.lines import Line2D
from matplotlib.transforms import offset_copy

from repgeom.plots.common import (
    format_step_axis,
    mark_duplicates,
    shared_step_label,
    step_axis,
    step_positions,
)

REFERENCES = {"first": "C0", "previous": "C1", "last": "C2"}
GROUP_STYLES = {  # colour, marker: groups often move alike, markers keep them apart
    "embeddings": ("C0", "o"),
    "attention": ("C1", "s"),
    "mlp": ("C2", "^"),
    "norms": ("C4", "D"),
    "head": ("C3", "v"),
    "other": ("C7", "x"),
}
MAX_ANNOTATIONS = 8  # more marked checkpoints than this are counted in the title, not labelled


def distance_scale(ax: plt.Axes, values: np.ndarray) -> str:
    """Symlog y (zeros shown) when the positive values span over a decade, else linear."""
    v = np.asarray(values, dtype=np.float64)
    pos = v[np.isfinite(v) & (v > 0)]
    if pos.size and pos.max() > 10 * pos.min():
        linthresh = 10.0 ** np.floor(np.log10(pos.min()))  # a decade: ticks 0, 10^k, 10^k+1
        ax.set_yscale("symlog", linthresh=float(linthresh), linscale=1.0)
        ax.set_ylim(bottom=-0.12 * linthresh)  # markers at zero drawn whole
        return "symlog"
    return "linear"


def _annotate_inside(ax: plt.Axes, x: float, y: float, text: str, color: str) -> None:
    """A label next to a point, on the side that keeps it inside the axes."""
    fx, fy = ax.transAxes.inverted().transform(ax.transData.transform((x, y)))
    right, top = fx > 0.6, fy > 0.7
    ax.annotate(
        text,
        (x, y),
        xytext=(-6 if right else 6, -8 if top else 8),
        textcoords="offset points",
        ha="right" if right else "left",
        va="top" if top else "bottom",
        fontsize=6,
        color=color,
        annotation_clip=True,
    )


def _plot_marked(
    ax: plt.Axes,
    x: np.ndarray,
    y: np.ndarray,
    dup: np.ndarray,
    color: str,
    label: str,
    marker: str = "o",
) -> None:
    """A line with filled markers, its duplicates drawn hollow over them."""
    ax.plot(x, y, marker=marker, ms=3.5, lw=1.2, color=color, label=label)
    mark_duplicates(ax, x, y, dup, color=color, marker=marker, markersize=3.5, legend=False)


def _ring(
    ax: plt.Axes, x: np.ndarray, y: np.ndarray, where: np.ndarray, style: dict, gid: str
) -> np.ndarray:
    """Open markers around the points ``where`` (and finite), drawn over the lines; returns
    the points marked."""
    mask = np.asarray(where, dtype=bool) & np.isfinite(y)
    if mask.any():
        ax.plot(x[mask], y[mask], ls="none", mfc="none", zorder=4, gid=gid, **style)
    return mask


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _pad_right(ax: plt.Axes, x: np.ndarray, ordinal: bool) -> None:
    """Room right of the last checkpoint, so its markers are drawn whole."""
    last = float(np.nanmax(x)) if np.isfinite(x).any() else 0.0
    ax.set_xlim(right=last + 0.5 if ordinal or last <= 1 else last * 1.3)


def _style_panel(
    ax: plt.Axes, x: np.ndarray, ticks: list[str] | None, ylabel: str, title: str
) -> None:
    """The step axis (padded right; the figure's one x label names it), y label, title and
    grid of one panel."""
    format_step_axis(ax, ticks, xlabel=False)
    _pad_right(ax, x, ticks is not None)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)


def _legend_below(ax: plt.Axes, ncols: int, handles: list | None = None) -> None:
    """The panel's legend below its axes and their tick labels (as tall as they are: long
    checkpoint labels turned 45° reach far down), frameless."""
    extra = {} if handles is None else {"handles": handles}
    fig = ax.get_figure()
    renderer = fig.canvas.get_renderer()
    heights = [t.get_window_extent(renderer).height for t in ax.get_xticklabels() if t.get_text()]
    below = max(heights, default=0.0) * 72 / fig.dpi + 10  # points: tick, pad and a gap
    ax.legend(
        **extra,
        fontsize=7,
        ncols=ncols,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        bbox_transform=offset_copy(ax.transAxes, fig=fig, y=-below, units="points"),
        frameon=False,
    )


def _marker_handles(ax: plt.Axes, dup: np.ndarray, ring: np.ndarray, shared: np.ndarray) -> list:
    """The distance panel's legend handles: its lines, then the duplicate, discontinuity and
    partial-duplicate markers that are drawn."""
    handles, _ = ax.get_legend_handles_labels()
    for present, key in (
        ((dup != "").any(), dict(marker="o", mfc="white", mec="black", label="duplicate (kept)")),
        (ring.any(), dict(marker="o", ms=10, mfc="none", mec="red", label="discontinuity")),
        (shared.any(), dict(marker="D", mfc="none", mec="purple", label="partial duplicate")),
    ):
        if present:
            handles.append(Line2D([], [], ls="none", **key))
    return handles


def _marked_texts(
    labels: list[str], dup: np.ndarray, ring: np.ndarray, shared: np.ndarray, partial: np.ndarray
) -> dict[int, list[str]]:
    """The labels of the marked checkpoints by position: one per point, "step1, step2 = step0"
    once (at the last copy), jumps and partial duplicates."""
    marked: dict[int, list[str]] = {}
    for original in dict.fromkeys(d for d in dup if d):
        copies = np.flatnonzero(dup == original)
        names = ", ".join(labels[i] for i in copies)
        marked.setdefault(int(copies[-1]), []).append(f"{names} = {original}")
    for i in np.flatnonzero(ring):
        marked.setdefault(int(i), []).append(f"{labels[i]}: jump")
    for i in np.flatnonzero(shared):
        marked.setdefault(int(i), []).append(f"{labels[i]}: tensors of {partial[i]}")
    return marked


def _distance_panel(
    ax: plt.Axes, ds: xr.Dataset, x: np.ndarray, ticks: list[str] | None, dup: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Distances to the first, previous and last checkpoint, duplicates hollow, jumps and
    partial duplicates ringed and the marked ones labelled; returns the rings and the partial
    duplicates drawn."""
    labels = [str(s) for s in ds["step"].values]
    partial = np.array([str(v) for v in ds["partial_duplicate_of"].values])
    jumps = np.asarray(ds["discontinuity"].values, dtype=bool)
    for ref, color in REFERENCES.items():
        _plot_marked(ax, x, ds[f"distance_to_{ref}"].values, dup, color, f"to the {ref}")
    previous = np.asarray(ds["distance_to_previous"].values, dtype=np.float64)
    ring = _ring(
        ax, x, previous, jumps, dict(marker="o", ms=12, mec="red", mew=1.6), "discontinuities"
    )
    first = np.asarray(ds["distance_to_first"].values, dtype=np.float64)
    style = dict(marker="D", ms=8, mec="purple", mew=1.2)
    shared = _ring(ax, x, first, partial != "", style, "partial_duplicates")
    scale = distance_scale(ax, np.concatenate([ds[f"distance_to_{r}"].values for r in REFERENCES]))
    ylabel = f"‖θ − θ_ref‖ / ‖θ_ref‖ ({scale})"
    _style_panel(ax, x, ticks, ylabel, "distance between checkpoints")
    _legend_below(ax, 2, _marker_handles(ax, dup, ring, shared))
    marked = _marked_texts(labels, dup, ring, shared, partial)
    if len(marked) <= MAX_ANNOTATIONS:
        for i, texts in marked.items():
            y = previous[i] if np.isfinite(previous[i]) else first[i]
            _annotate_inside(ax, float(x[i]), float(y), "\n".join(texts), "dimgray")
    return ring, shared


def _group_panel(
    ax: plt.Axes,
    ds: xr.Dataset,
    x: np.ndarray,
    ticks: list[str] | None,
    dup: np.ndarray,
    groups: list[str],
) -> None:
    """The distance to the first checkpoint of each tensor group (those measured)."""
    by_group = ds["distance_to_first_by_group"]
    for g in groups:
        y = by_group.sel(group=g).values
        if np.isfinite(y).any():
            color, marker = GROUP_STYLES.get(g, GROUP_STYLES["other"])
            _plot_marked(ax, x, y, dup, color, g, marker)
    scale = distance_scale(ax, by_group.values)
    _style_panel(ax, x, ticks, f"distance to the first, per group ({scale})", "by tensor group")
    _legend_below(ax, 3)


def _cosine_panel(
    ax: plt.Axes,
    ds: xr.Dataset,
    x: np.ndarray,
    ticks: list[str] | None,
    dup: np.ndarray,
    groups: list[str],
) -> None:
    """The cosine to the first checkpoint, of the whole model and of each tensor group."""
    _plot_marked(ax, x, ds["cosine_to_first"].values, dup, "black", "whole model")
    cos_g = ds["cosine_to_first_by_group"]
    for g in groups:
        y = cos_g.sel(group=g).values
        if np.isfinite(y).any():
            color, marker = GROUP_STYLES.get(g, GROUP_STYLES["other"])
            ax.plot(x, y, lw=0.9, ls="--", marker=marker, ms=2.5, color=color, label=g)
    _style_panel(ax, x, ticks, "cosine to the first checkpoint", "direction")
    _legend_below(ax, 3)


def weights_figure(ds: xr.Dataset, title: str = "") -> plt.Figure:
    """Distances to first/previous/last, per group, and the cosine to the first, over steps."""
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 4.2), constrained_layout=True)
    ticks = step_axis(ds)
    x = step_positions(ds, ticks is not None)
    dup = np.array([str(v) for v in ds["duplicate_of"].values])
    groups = [str(g) for g in ds["group"].values]
    ring, shared = _distance_panel(axes[0], ds, x, ticks, dup)
    _group_panel(axes[1], ds, x, ticks, dup, groups)
    _cosine_panel(axes[2], ds, x, ticks, dup, groups)
    model = title or str(ds.attrs.get("model", ""))
    factor = ds.attrs.get("discontinuity_factor", "?")
    counts = [
        _count(int((dup != "").sum()), "duplicate", "duplicates") + " (hollow)",
        _count(int(ring.sum()), "discontinuity", "discontinuities") + f" (red; factor {factor})",
        _count(int(shared.sum()), "partial duplicate", "partial duplicates"),
    ]
    fig.suptitle(f"{model + ' · ' if model else ''}weights · " + ", ".join(counts), fontsize=9)
    shared_step_label(fig, ticks)
    return fig
