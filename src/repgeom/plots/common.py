"""Shared figure helpers: a headless backend, step colours and step axes, labels that fit their
axes, legends outside the data, atomic saving with provenance and a layout check."""

from __future__ import annotations

import io
import json
import logging
import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.ticker import MaxNLocator

from repgeom.io import atomic_path, write_text
from repgeom.plots.layout import LAYOUT_KEY, drawn_texts, layout_faults, png_with_text
from repgeom.steps import step_number


def step_numbers(obj: xr.Dataset | xr.DataArray) -> np.ndarray:
    """Training step (float, NaN when unknown) of every entry along ``step``: the
    ``step_number`` coordinate, else a numeric ``step``, else parsed from the labels."""
    if "step_number" in obj.coords:
        return np.asarray(obj["step_number"].values, dtype=np.float64)
    values = obj["step"].values
    if np.issubdtype(values.dtype, np.number):
        return values.astype(np.float64)
    return np.array([step_number(str(label)) for label in values], dtype=np.float64)


def step_axis(*objs: xr.Dataset | xr.DataArray) -> list[str] | None:
    """None when every checkpoint of ``objs`` has a step number (a step axis), else the tick
    labels of an ordinal axis (the longest ``step`` of ``objs``): never an empty axis."""
    if all(np.isfinite(step_numbers(o)).all() for o in objs):
        return None
    return [str(s) for s in max((o["step"].values for o in objs), key=len)]


def step_positions(obj: xr.Dataset | xr.DataArray, ordinal: bool) -> np.ndarray:
    """x of every checkpoint along ``step``: its step number, or its position when ``ordinal``."""
    return np.arange(obj.sizes["step"], dtype=np.float64) if ordinal else step_numbers(obj)


STEP_LABEL = "training step (symlog: linear on [0, 1], log beyond)"
ORDINAL_LABEL = "checkpoint (in training order, not to scale: a label has no step number)"


def step_label(labels: list[str] | None) -> str:
    """The x label of a step axis (:func:`step_axis`): symlog steps, or ordinal checkpoints."""
    return STEP_LABEL if labels is None else ORDINAL_LABEL


def format_step_axis(ax: plt.Axes, labels: list[str] | None, xlabel: bool = True) -> None:
    """A symlog step axis (linear on [0, 1], so step 0 shows), or an ordinal one ticked with
    the checkpoint labels (:func:`step_axis`; turned 45°, every k-th shown where more would
    not fit the axes' width). ``xlabel``: label the axis (:func:`step_label`); panels side by
    side share one label instead (:func:`shared_step_label`)."""
    if labels is None:
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlim(left=0)
    else:
        ax.set_xticks(range(len(labels)), _thinned(ax, labels), rotation=45, ha="right", fontsize=6)
    if xlabel:
        ax.set_xlabel(step_label(labels))


def _thinned(ax: plt.Axes, labels: list[str], spacing_pt: float = 11.0) -> list[str]:
    """``labels``, every k-th kept (the last always) so that labels turned 45° at 6 pt, each
    ``spacing_pt`` apart along the axis, fit 85 % of the axes' width; the others blank."""
    fig = ax.get_figure()
    width_pt = 0.85 * ax.get_position().width * fig.get_figwidth() * 72 if fig else np.inf
    k = max(1, int(np.ceil(len(labels) * spacing_pt / max(width_pt, 1.0))))
    if k == 1:
        return list(labels)
    last = len(labels) - 1
    keep = {i for i in range(0, last + 1, k) if last - i >= k or i == 0} | {last}
    return [label if i in keep else "" for i, label in enumerate(labels)]


def shared_step_label(fig: plt.Figure, labels: list[str] | None, fontsize: float = 9) -> None:
    """One x label under all panels of ``fig`` (their step axes made with ``xlabel=False``)."""
    fig.supxlabel(step_label(labels), fontsize=fontsize)


def wrap_label(text: str, inches: float, fontsize: float) -> str:
    """``text`` broken at spaces into lines of at most ``inches`` at ``fontsize`` (a generous
    0.6 em a character): an axis label as long as its axes, not longer."""
    width = max(16, int(inches * 72 / (0.6 * fontsize)))
    return "\n".join(textwrap.wrap(text, width, break_long_words=False)) or text


def integer_ticks(axis: object) -> None:
    """Integer ticks only on ``axis`` (an ``ax.xaxis``/``ax.yaxis``: layers, ranks)."""
    axis.set_major_locator(MaxNLocator(integer=True))  # type: ignore[attr-defined]


def legend_right(ax: plt.Axes, **kwargs: object) -> None:
    """The axes' legend outside it, to the right, top-aligned (the layout engine makes room),
    in as many columns as the figure's height needs."""
    handles = kwargs.get("handles")
    n = len(handles) if isinstance(handles, list) else len(ax.get_legend_handles_labels()[0])
    fontsize = kwargs.get("fontsize", 7)
    size = float(fontsize) if isinstance(fontsize, (int, float)) else 7.0
    fig = ax.get_figure()
    rows = max(4, int(0.85 * (fig.get_figheight() if fig else 4.0) * 72 / (1.9 * size)) - 1)
    options = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0}
    ax.legend(**{**options, "ncols": max(1, -(-n // rows)), **kwargs})


def step_colors(ds: xr.Dataset, cmap: str = "viridis") -> list[tuple[float, ...]]:
    """One colour per checkpoint, ordered by training step (labels without a number last)."""
    n = ds.sizes["step"]
    return [plt.get_cmap(cmap)(x) for x in np.linspace(0.0, 0.9, n)]


PROVENANCE_KEY = "repgeom-provenance"  # PNG text chunk holding the provenance JSON


DPI = 150


def save_figure(fig: plt.Figure, *paths: str | Path, meta: Mapping[str, str] | None = None) -> None:
    """Save a figure to each path (format from the suffix), atomically, then close it.

    The figure is laid out by its layout engine (constrained layout where it has none) on its
    own canvas: what the file shows is the figure's size, nothing cut, nothing added. A PNG is
    checked as it is drawn: texts overlapping each other or leaving the canvas are listed in its
    text chunk ``repgeom:layout`` (:mod:`repgeom.plots.layout`; empty lists when clean, logged
    as a warning otherwise). ``meta`` (see :func:`repgeom.provenance.artifact_provenance`) is
    embedded as JSON: in the PNG text chunk ``repgeom-provenance``, in the PDF's Subject field.
    PDFs get no creation date, so the same figure gives the same bytes.
    """
    text = json.dumps(dict(meta or {}), sort_keys=True)
    if fig.get_layout_engine() is None:
        fig.set_layout_engine("constrained")
    fig.set_dpi(DPI)
    for path in paths:
        fmt = Path(path).suffix[1:]
        with atomic_path(path) as tmp:
            if fmt == "png":
                Path(tmp).write_bytes(_checked_png(fig, {PROVENANCE_KEY: text}, Path(path).name))
            else:
                info = {"Subject": f"{PROVENANCE_KEY} {text}", "CreationDate": None}
                fig.savefig(tmp, dpi=DPI, format=fmt, metadata=info if fmt == "pdf" else {})
    plt.close(fig)


def _checked_png(fig: plt.Figure, info: dict[str, str], name: str) -> bytes:
    """The PNG bytes of ``fig`` with the text chunks ``info`` and its layout check."""
    buffer = io.BytesIO()
    with drawn_texts() as drawn:
        fig.savefig(buffer, dpi=DPI, format="png", metadata=info)
    faults = layout_faults(fig, drawn)
    if faults["outside"] or faults["overlaps"]:
        logging.getLogger(__name__).warning("figure %s: layout faults %s", name, faults)
    record = json.dumps(faults, sort_keys=True)  # ASCII: a Latin-1 text chunk
    return png_with_text(buffer.getvalue(), LAYOUT_KEY, record)


class StemFiles:
    """The figures and tables of a job whose every PNG has a PDF, and every CSV a LaTeX file,
    of the same stem among its outputs ``pdfs`` and ``texs``; ``meta``: their provenance."""

    def __init__(
        self, pdfs: Iterable[str | Path], texs: Iterable[str | Path], meta: Mapping[str, str]
    ) -> None:
        self.pdfs = {Path(f).stem: f for f in pdfs}
        self.texs = {Path(f).stem: f for f in texs}
        self.meta = meta

    def figure(self, fig: plt.Figure, png: str | Path) -> None:
        """Save ``fig`` as ``png`` and the PDF of its stem (:func:`save_figure`)."""
        save_figure(fig, png, self.pdfs[Path(png).stem], meta=self.meta)

    def table(self, csv_path: str | Path, csv_tex: tuple[str, str]) -> None:
        """Write a (CSV, LaTeX) table as ``csv_path`` and the LaTeX file of its stem."""
        write_text(csv_path, csv_tex[0], self.meta)
        write_text(self.texs[Path(csv_path).stem], csv_tex[1], self.meta)


def figure_provenance(path: str | Path) -> dict[str, str]:
    """The provenance embedded by :func:`save_figure` in a PNG file."""
    from PIL import Image

    with Image.open(path) as im:
        return json.loads(im.text.get(PROVENANCE_KEY, "{}"))


def write_table(
    rows: list[dict],
    csv_path: str | Path,
    tex_path: str | Path,
    meta: Mapping[str, str] | None = None,
    n_labels: int = 4,
) -> None:
    """Write rows as CSV (full precision) and as a LaTeX tabular (4 significant digits), the
    first ``n_labels`` columns left-aligned labels; ``meta`` (provenance) heads both files as
    comment lines."""
    columns = list(rows[0])

    def fmt(v: object) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = [",".join(columns)] + [",".join(str(r[c]) for c in columns) for r in rows]
    write_text(csv_path, "\n".join(lines) + "\n", meta)
    head = " & ".join(c.replace("_", r"\_") for c in columns)
    body = [" & ".join(fmt(r[c]).replace("_", r"\_") for c in columns) + r" \\" for r in rows]
    tex = [
        r"\begin{tabular}{" + "l" * n_labels + "r" * (len(columns) - n_labels) + "}",
        r"\hline",
        head + r" \\",
        r"\hline",
        *body,
        r"\hline",
        r"\end{tabular}",
    ]
    write_text(tex_path, "\n".join(tex) + "\n", meta)


def mark_duplicates(
    ax: plt.Axes,
    x: np.ndarray,
    values: np.ndarray,
    duplicate_of: np.ndarray,
    color: object = "black",
    marker: str = "o",
    markersize: float = 5.0,
    legend: bool = True,
) -> plt.Line2D | None:
    """Draw kept duplicates (``duplicate_of`` not '') hollow over a line's markers; the first
    on an axes carries the legend entry (unless ``legend`` is False)."""
    dup = np.array([str(d) != "" for d in np.asarray(duplicate_of)], dtype=bool)
    y = np.asarray(values, dtype=np.float64)
    dup &= np.isfinite(y)
    if not dup.any():
        return None
    first = legend and not any(a.get_gid() == "duplicates" for a in ax.get_lines())
    label = "same weights as an earlier checkpoint" if first else "_nolegend_"
    (line,) = ax.plot(
        np.asarray(x, dtype=np.float64)[dup],
        y[dup],
        linestyle="none",
        marker=marker,
        markersize=markersize + 1.0,
        markerfacecolor=ax.get_facecolor(),
        markeredgecolor=color,
        markeredgewidth=1.2,
        zorder=3,
        gid="duplicates",
        label=label,
    )
    return line


def duplicate_labels(obj: xr.Dataset | xr.DataArray) -> np.ndarray:
    """Per checkpoint along ``step``: the earlier checkpoint whose weights it repeats (the
    ``duplicate_of`` coordinate gathered datasets carry), '' where none or not known."""
    if "duplicate_of" in obj.coords:
        return np.asarray(obj["duplicate_of"].values, dtype=str)
    return np.full(obj.sizes["step"], "", dtype=object)
