"""Shared figure helpers: a headless backend, step colours, atomic saving with provenance."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from repgeom.io import atomic_path, write_text
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


def format_step_axis(ax: plt.Axes, labels: list[str] | None) -> None:
    """A symlog step axis (linear on [0, 1], so step 0 shows), or an ordinal one ticked with
    the checkpoint labels (:func:`step_axis`)."""
    if labels is None:
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlim(left=0)
        ax.set_xlabel("training step (symlog: linear on [0, 1], log beyond)")
        return
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=6)
    ax.set_xlabel("checkpoint (no step number in every label: ordered, not to scale)")


def step_colors(ds: xr.Dataset, cmap: str = "viridis") -> list[tuple[float, ...]]:
    """One colour per checkpoint, ordered by training step (labels without a number last)."""
    n = ds.sizes["step"]
    return [plt.get_cmap(cmap)(x) for x in np.linspace(0.0, 0.9, n)]


PROVENANCE_KEY = "repgeom-provenance"  # PNG text chunk holding the provenance JSON


def save_figure(fig: plt.Figure, *paths: str | Path, meta: Mapping[str, str] | None = None) -> None:
    """Save a figure to each path (format from the suffix), atomically, then close it.

    ``meta`` (see :func:`repgeom.provenance.artifact_provenance`) is embedded as JSON:
    in the PNG text chunk ``repgeom-provenance``, in the PDF's Subject field. PDFs get no creation
    date, so the same figure gives the same bytes.
    """
    text = json.dumps(dict(meta or {}), sort_keys=True)
    for path in paths:
        fmt = Path(path).suffix[1:]
        info: dict[str, str | None] = {}
        if fmt == "png":
            info = {PROVENANCE_KEY: text}
        elif fmt == "pdf":
            info = {"Subject": f"{PROVENANCE_KEY} {text}", "CreationDate": None}
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=150, bbox_inches="tight", format=fmt, metadata=info)
    plt.close(fig)


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
