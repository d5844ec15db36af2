"""The layout check of a drawn figure: text that overlaps other text or leaves the canvas.

:func:`repgeom.plots.common.save_figure` draws each figure once for its PNG while
:func:`drawn_texts` records every text the renderer draws (tick labels, axis labels, titles,
suptitle, legend texts, annotations, colorbar labels; hidden or empty ones are not drawn, so not
recorded), measures them with :func:`layout_faults` and stores the result in the PNG's text chunk
``repgeom:layout`` (:data:`LAYOUT_KEY`, read back with :func:`figure_layout`)::

    {"outside": ['y label (panel 0 "docs"): "α-ReQ ..."'], "overlaps": [[text, text], ...]}

both lists empty when the figure is clean. Each text is measured as drawn: its rectangle, turned
by its rotation (two labels at 45° whose axis-aligned boxes meet but whose glyph boxes do not,
do not overlap), in pixels of the saved PNG; boxes may overlap or leave the canvas by
:data:`TOLERANCE_PX` (touching boxes).
"""

from __future__ import annotations

import functools
import json
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.text import Text

LAYOUT_KEY = "repgeom:layout"  # PNG text chunk holding the layout check (JSON)
TOLERANCE_PX = 2.0  # overlap (or overhang) allowed for touching boxes, in pixels at 150 dpi


@contextmanager
def drawn_texts() -> Iterator[list[Text]]:
    """Within the block, every :class:`~matplotlib.text.Text` drawn (visible, not blank) is
    appended to the yielded list, in drawing order. Every text artist of matplotlib draws
    through ``Text.draw`` (tick labels, legends, annotations, offset boxes), so what is recorded
    is what the renderer drew: texts of hidden axes or legends, and tick labels outside the
    view limits, are not."""
    drawn: list[Text] = []
    draw = Text.draw

    @functools.wraps(draw)
    def recording(self: Text, renderer: object) -> None:
        draw(self, renderer)
        if self.get_visible() and self.get_text().strip():
            drawn.append(self)

    Text.draw = recording  # type: ignore[method-assign]
    try:
        yield drawn
    finally:
        Text.draw = draw  # type: ignore[method-assign]


def _roles(fig: Figure) -> dict[int, str]:
    """What each text of ``fig`` is, by ``id``: 'x tick (panel 2 "docs")', 'suptitle', …"""
    roles: dict[int, str] = {}
    figure_texts = (("_suptitle", "suptitle"), ("_supxlabel", "x label"), ("_supylabel", "y label"))
    for attr, role in figure_texts:
        text = getattr(fig, attr, None)
        if text is not None:
            roles[id(text)] = role
    for legend in fig.legends:
        roles[id(legend.get_title())] = "legend title"
        roles.update({id(t): "legend" for t in legend.get_texts()})
    for i, ax in enumerate(fig.axes):
        title = " ".join(ax.get_title().split())
        where = f"panel {i}" + (f' "{title[:40]}"' if title else "")
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            roles[id(axis.label)] = f"{name} label ({where})"
            roles[id(axis.get_offset_text())] = f"{name} offset ({where})"
            for tick in [*axis.majorTicks, *axis.minorTicks]:
                roles[id(tick.label1)] = roles[id(tick.label2)] = f"{name} tick ({where})"
        for text in (ax.title, getattr(ax, "_left_title", None), getattr(ax, "_right_title", None)):
            roles[id(text)] = f"title ({where})"
        legend = ax.get_legend()
        if legend is not None:
            roles[id(legend.get_title())] = f"legend title ({where})"
            roles.update({id(t): f"legend ({where})" for t in legend.get_texts()})
        roles.update({id(t): f"text ({where})" for t in ax.texts})
    return roles


def _rectangle(text: Text, renderer: object) -> tuple[np.ndarray, np.ndarray]:
    """(the 4 corners of the text's turned rectangle, its axis-aligned box x0 y0 x1 y1), pixels."""
    box = text.get_window_extent(renderer)
    rotation = text.get_rotation()
    angle = np.deg2rad(rotation)
    w, h = box.width, box.height
    if abs(np.sin(2 * angle)) > 1e-6:  # turned, not by a multiple of 90°: measure it flat
        text.set_rotation(0)
        flat = text.get_window_extent(renderer)
        text.set_rotation(rotation)
        w, h = flat.width, flat.height
    else:  # upright or on its side: the axis-aligned box is the rectangle
        angle = 0.0
    c, s = np.cos(angle), np.sin(angle)
    half = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2
    centre = np.array([(box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2])
    corners = half @ np.array([[c, s], [-s, c]]) + centre  # the box's centre is the rectangle's
    return corners, np.array([box.x0, box.y0, box.x1, box.y1])


def overlap_depth(a: np.ndarray, b: np.ndarray) -> float:
    """How far (pixels) two convex polygons (corners in order) overlap: the smallest overlap
    of their projections on the normals of their edges (separating axes); <= 0 when apart."""
    depth = np.inf
    for poly in (a, b):
        for edge in np.roll(poly, -1, axis=0) - poly:
            length = np.hypot(*edge)
            if length == 0:
                continue
            normal = np.array([-edge[1], edge[0]]) / length
            pa, pb = a @ normal, b @ normal
            depth = min(depth, min(pa.max(), pb.max()) - max(pa.min(), pb.min()))
    return float(depth)


def layout_faults(
    fig: Figure, drawn: list[Text], tolerance: float = TOLERANCE_PX
) -> dict[str, list]:
    """The texts of ``drawn`` (just drawn on ``fig``'s canvas, :func:`drawn_texts`) that leave
    the canvas, and the pairs that overlap, each named by role and text:
    ``{"outside": [name, …], "overlaps": [[name, name], …]}``, sorted; empty lists when clean."""
    renderer = fig.canvas.get_renderer()
    roles = _roles(fig)
    names, corners, boxes = [], [], []
    for text in dict.fromkeys(drawn):  # a text drawn twice is measured once
        rectangle, box = _rectangle(text, renderer)
        words = " ".join(text.get_text().split())
        names.append(f'{roles.get(id(text)) or "text"}: "{words[:60]}"')
        corners.append(rectangle)
        boxes.append(box)
    width, height = fig.bbox.width, fig.bbox.height
    outside = {
        name
        for name, (x0, y0, x1, y1) in zip(names, boxes, strict=True)
        if min(x0, y0) < -tolerance or x1 > width + tolerance or y1 > height + tolerance
    }
    overlaps = set()
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            bi, bj = boxes[i], boxes[j]
            if bi[0] >= bj[2] or bj[0] >= bi[2] or bi[1] >= bj[3] or bj[1] >= bi[3]:
                continue  # axis-aligned boxes apart: the rectangles are too
            if overlap_depth(corners[i], corners[j]) > tolerance:
                overlaps.add(tuple(sorted((names[i], names[j]))))
    return {"outside": sorted(outside), "overlaps": [list(p) for p in sorted(overlaps)]}


def png_with_text(png: bytes, key: str, text: str) -> bytes:
    """``png`` with a tEXt chunk ``key`` = ``text`` (Latin-1) right after its header chunk."""
    data = key.encode("latin-1") + b"\0" + text.encode("latin-1")
    chunk = b"tEXt" + data
    end = 8 + 4 + 4 + 13 + 4  # signature, then IHDR: length, type, 13 bytes of data, CRC
    if png[12:16] != b"IHDR":
        raise ValueError("not a PNG file: no IHDR chunk after the signature")
    framed = struct.pack(">I", len(data)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return png[:end] + framed + png[end:]


def figure_layout(path: str | Path) -> dict[str, list] | None:
    """The layout check :func:`repgeom.plots.common.save_figure` stored in a PNG file (see the
    module doc), or None where the file has none."""
    from PIL import Image

    with Image.open(path) as im:
        text = im.text.get(LAYOUT_KEY)
    return None if text is None else json.loads(text)
