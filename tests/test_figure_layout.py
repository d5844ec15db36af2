"""Figures read cleanly: no two texts overlap, no text leaves the canvas, layer axes have integer
ticks. The check itself (repgeom.plots.layout, run by save_figure on every PNG) is tested on
figures built to fail and to pass; the plot functions on data that crowds them (many
checkpoints with long labels, no step numbers, long names); and every figure of the shared
end-to-end run of config/test.yaml is read back from its PNG."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr
from PIL import Image

from repgeom.plots.common import figure_provenance, legend_right, save_figure
from repgeom.plots.layout import (
    LAYOUT_KEY,
    drawn_texts,
    figure_layout,
    layout_faults,
    overlap_depth,
)


def saved_layout(fig: plt.Figure, tmp_path, name: str = "figure.png") -> dict:
    """The layout check save_figure stores in the PNG of ``fig``."""
    png = tmp_path / name
    save_figure(fig, png)
    layout = figure_layout(png)
    assert layout is not None, f"{png} has no {LAYOUT_KEY} text chunk"
    return layout


def test_overlapping_texts_and_texts_off_the_canvas_are_named(tmp_path):
    fig, ax = plt.subplots(figsize=(4, 3), layout="constrained")
    ax.plot([0, 1], [0, 1])
    ax.text(0.5, 0.5, "first note", transform=ax.transAxes)
    ax.text(0.52, 0.5, "second note", transform=ax.transAxes)
    fig.text(0.98, 0.5, "runs off the right edge")
    layout = saved_layout(fig, tmp_path)
    assert layout["overlaps"] == [['text (panel 0): "first note"', 'text (panel 0): "second note"']]
    assert layout["outside"] == ['text: "runs off the right edge"']


def test_a_clean_figure_passes_and_keeps_its_provenance(tmp_path):
    fig, axes = plt.subplots(1, 2, figsize=(7, 3), layout="constrained")
    for ax in axes:
        for k in range(3):
            ax.plot(range(5), np.arange(5) * k, label=f"checkpoint {k}")
        ax.set_xlabel("layer (0 = embeddings)")
        ax.set_title("a title")
    axes[0].set_ylabel("a y label")
    legend_right(axes[-1], title="checkpoint")
    fig.suptitle("a suptitle")
    png = tmp_path / "clean.png"
    save_figure(fig, png, tmp_path / "clean.pdf", meta={"rule": "r"})
    assert figure_layout(png) == {"outside": [], "overlaps": []}
    assert figure_provenance(png) == {"rule": "r"}
    with Image.open(png) as im:
        im.verify()  # chunk CRCs intact
    assert (tmp_path / "clean.pdf").read_bytes().startswith(b"%PDF-")


def ticked(n: int, rotation: float) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
    ax.plot(range(n), np.zeros(n))
    ax.set_xticks(range(n), [f"checkpoint-{i}" for i in range(n)], rotation=rotation, ha="right")
    return fig


def test_turned_labels_are_measured_as_turned_rectangles(tmp_path):
    # 45° labels whose axis-aligned boxes meet but whose glyph boxes do not: clean
    fig = ticked(10, 45)
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in fig.axes[0].get_xticklabels()]
    assert boxes[0].overlaps(boxes[1])
    assert saved_layout(fig, tmp_path)["overlaps"] == []
    # the same labels packed six times as close: their rectangles overlap
    assert saved_layout(ticked(60, 45), tmp_path, "packed.png")["overlaps"]
    assert saved_layout(ticked(10, 0), tmp_path, "flat.png")["overlaps"]


def test_hidden_and_empty_texts_do_not_count(tmp_path):
    fig, axes = plt.subplots(1, 2, figsize=(6, 3), layout="constrained")
    axes[0].set_xticks([0, 0.5, 1], ["", "", ""])
    axes[0].text(0.5, 0.5, "shown", transform=axes[0].transAxes)
    axes[0].text(0.5, 0.5, "hidden", transform=axes[0].transAxes, visible=False)
    axes[1].text(0.5, 0.5, "one", transform=axes[1].transAxes)
    axes[1].text(0.5, 0.5, "two", transform=axes[1].transAxes)
    axes[1].set_visible(False)  # its texts are not drawn
    assert saved_layout(fig, tmp_path) == {"outside": [], "overlaps": []}


def test_touching_boxes_are_within_the_tolerance():
    square = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], dtype=float)
    assert overlap_depth(square, square + [11, 0]) < 0  # apart
    assert overlap_depth(square, square + [9, 0]) == pytest.approx(1.0)  # touching: 1 px
    assert overlap_depth(square, square + [5, 5]) == pytest.approx(5.0)
    # a square turned 45° off the corner (10, 10): boxes overlap, the shapes are 2 px apart
    diamond = 5 * np.sqrt(2) * np.array([[1, 0], [0, 1], [-1, 0], [0, -1]]) + [15, 15]
    assert overlap_depth(square, diamond) == pytest.approx(-(10 - 5 * np.sqrt(2)) / np.sqrt(2))


def bare() -> plt.Figure:
    fig = plt.figure(figsize=(4, 3))
    ax = fig.add_subplot()
    ax.set_yticks([0, 1], ["a long tick label", "another long tick label"])
    ax.set_ylabel("y")
    return fig


def test_a_figure_without_a_layout_engine_is_given_one(tmp_path):
    fig = bare()  # as it stands, its tick labels run off the left edge
    with drawn_texts() as drawn:
        fig.canvas.draw()
    assert len(layout_faults(fig, drawn)["outside"]) == 3
    plt.close(fig)
    fig = bare()
    assert saved_layout(fig, tmp_path) == {"outside": [], "overlaps": []}
    assert fig.get_layout_engine() is not None


# --- the plot functions on crowding data --------------------------------------------------

N_STEPS, LAYERS = 40, list(range(13))
CORPORA = ["wikitext_103_validation", "random"]
LONG_NAME = "α-ReQ: exponent α of λ_i ∝ i^−α over ranks 10…1000 of the covariance spectrum"


def crowded(numbers: bool) -> xr.Dataset:
    """A gathered dataset of every variable the step and layer figures draw: 40 checkpoints
    with long labels (the last without a step number unless ``numbers``), 13 layers."""
    rng = np.random.default_rng(0)
    steps = [f"step{1000 * i}-tokens{2 * i}B" for i in range(N_STEPS)]
    step_number = 1000.0 * np.arange(N_STEPS)
    if not numbers:
        steps[-1], step_number[-1] = "main", np.nan
    dims = ("step", "corpus", "positions", "layer")
    shape = (N_STEPS, len(CORPORA), 2, len(LAYERS))
    per_step = (("step", "corpus", "layer"), rng.uniform(size=shape[:2] + shape[3:]))
    return xr.Dataset(
        {
            "alpha_req": (dims, rng.uniform(size=shape), {"long_name": LONG_NAME}),
            "anisotropy": (dims, rng.uniform(size=shape), {"long_name": "anisotropy σ₁²/‖X‖²"}),
            "twonn": (dims, rng.uniform(size=shape), {"long_name": "TwoNN intrinsic dimension"}),
            "cka_to_final": per_step,
            "cka_to_final_debiased": per_step,
        },
        coords={
            "step": steps,
            "step_number": ("step", step_number),
            "corpus": CORPORA,
            "positions": ["all", "no_first"],
            "layer": LAYERS,
        },
    )


def crowded_weights(numbers: bool) -> xr.Dataset:
    """A weights dataset (:func:`repgeom.plots.weights.weights_figure`) of the same 40
    checkpoints: growing distances, one duplicate, one jump."""
    ds = crowded(numbers)
    n, groups = ds.sizes["step"], ["embeddings", "attention", "mlp", "norms", "head"]
    grow = np.linspace(0.0, 1.0, n) ** 2
    by_group = grow[:, None] * np.linspace(0.5, 1.5, len(groups))
    duplicate = np.full(n, "", dtype=object)
    duplicate[5] = str(ds["step"].values[4])
    return xr.Dataset(
        {
            "distance_to_first": ("step", grow),
            "distance_to_previous": ("step", np.r_[np.nan, np.diff(grow)]),
            "distance_to_last": ("step", grow[::-1]),
            "distance_to_first_by_group": (("step", "group"), by_group),
            "cosine_to_first": ("step", 1 - grow / 2),
            "cosine_to_first_by_group": (("step", "group"), 1 - by_group / 2),
            "duplicate_of": ("step", duplicate.astype(str)),
            "partial_duplicate_of": ("step", np.full(n, "")),
            "discontinuity": ("step", np.arange(n) == 30),
        },
        coords={"step": ds["step"], "step_number": ds["step_number"], "group": groups},
        attrs={"discontinuity_factor": 2.0},
    )


def figures(numbers: bool) -> dict:
    from repgeom.plots.anisotropy import anisotropy_by_layer
    from repgeom.plots.similarity import alpha_req_by_step, cka_to_final_by_step
    from repgeom.plots.weights import weights_figure
    from repgeom.shape_of_learning import plots as sol

    ds = crowded(numbers)
    model = "EleutherAI/pythia-160m-deduped"
    few = ds.isel(step=[0, 10, 20, 39])
    return {
        "cka_to_final": lambda: cka_to_final_by_step(ds, title=model),
        "alpha_req": lambda: alpha_req_by_step(ds, title=model),
        "by_step": lambda: sol.by_step({model: ds, "encoder": ds}, "twonn"),
        "by_layer": lambda: sol.by_layer({model: few, "encoder": few}, "anisotropy"),
        "anisotropy_by_layer": lambda: anisotropy_by_layer(few.isel(positions=0), title=model),
        "weights": lambda: weights_figure(crowded_weights(numbers), title=model),
    }


@pytest.mark.parametrize("numbers", [True, False], ids=["step numbers", "ordinal"])
@pytest.mark.parametrize("name", list(figures(True)))
def test_step_and_layer_figures_read_cleanly_on_crowding_data(tmp_path, name, numbers):
    fig = figures(numbers)[name]()
    layer_axes = [ax for ax in fig.axes if name.endswith("by_layer")]
    layout = saved_layout(fig, tmp_path)
    assert layout == {"outside": [], "overlaps": []}, layout
    for ax in layer_axes:  # integer layer ticks on every panel, not only the labelled row
        lo, hi = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
        assert ticks and all(float(t).is_integer() for t in ticks), (ax.get_title(), ticks)


# --- every figure of the end-to-end run ---------------------------------------------------


@pytest.mark.slow
def test_every_figure_of_the_test_run_reads_cleanly(run_dir):
    pngs = sorted((run_dir / "results").rglob("*.png"))
    assert len(pngs) >= 40, [str(p.relative_to(run_dir)) for p in pngs]
    faults = {}
    for png in pngs:
        layout = figure_layout(png)
        name = str(png.relative_to(run_dir))
        if layout is None:
            faults[name] = f"no {LAYOUT_KEY} text chunk: not saved by save_figure"
        elif layout["outside"] or layout["overlaps"]:
            faults[name] = layout
    assert not faults, "\n".join(f"{name}: {fault}" for name, fault in faults.items())
