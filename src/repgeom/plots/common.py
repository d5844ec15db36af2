"""Shared figure helpers: a headless backend, step colours, atomic saving with provenance."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from repgeom.io import atomic_path, write_text


def step_colors(ds: xr.Dataset, cmap: str = "viridis") -> list[tuple[float, ...]]:
    """One colour per checkpoint, ordered by training step (labels without a number last)."""
    n = ds.sizes["step"]
    return [plt.get_cmap(cmap)(x) for x in np.linspace(0.0, 0.9, n)]


PROVENANCE_KEY = "repgeom-provenance"  # PNG text chunk holding the provenance JSON


def save_figure(fig: plt.Figure, *paths: str | Path, meta: Mapping[str, str] | None = None) -> None:
    """Save a figure to each path (format from the suffix), atomically, then close it.

    ``meta`` (see :func:`repgeom.workflow.provenance.artifact_provenance`) is embedded as JSON:
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
