"""Similarity figures plot the dataset's values: heatmap arrays, one line per layer, step axes."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr

from repgeom.plots.similarity import (
    alpha_req_by_step,
    cka_heatmaps,
    cka_to_final_by_step,
    heatmap_steps,
)

STEPS = ["step0", "step1", "step4", "step16", "step64"]
CORPORA = ["docs", "random"]
LAYERS = [0, 1, 2]


def similarity_ds(step_number: list[float] | None = None) -> xr.Dataset:
    """A gathered similarity dataset of distinct, recognisable values."""
    rng = np.random.default_rng(0)
    shape = (len(STEPS), len(CORPORA), len(LAYERS))
    mats = rng.uniform(0, 1, size=(*shape, len(LAYERS)))
    ds = xr.Dataset(
        {
            "cka_layers": (("step", "corpus", "layer", "layer_other"), mats),
            "cka_layers_debiased": (("step", "corpus", "layer", "layer_other"), mats - 0.1),
            "cka_to_final": (("step", "corpus", "layer"), rng.uniform(0, 1, size=shape)),
            "cka_to_final_debiased": (("step", "corpus", "layer"), rng.uniform(0, 1, size=shape)),
            "n_tokens": (("step", "corpus"), np.full(shape[:2], 1024)),
        },
        coords={"step": STEPS, "corpus": CORPORA, "layer": LAYERS, "layer_other": LAYERS},
    )
    numbers = [0, 1, 4, 16, 64] if step_number is None else step_number
    return ds.assign_coords(step_number=("step", np.asarray(numbers, dtype=float)))


def test_heatmap_steps_spread_and_keep_first_and_last():
    assert heatmap_steps(STEPS) == ["step0", "step1", "step16", "step64"]
    assert heatmap_steps(STEPS, 3) == ["step0", "step4", "step64"]
    assert heatmap_steps(STEPS, 1) == ["step64"]
    assert heatmap_steps(STEPS[:2], 4) == ["step0", "step1"]
    with pytest.raises(ValueError, match="at least 1"):
        heatmap_steps(STEPS, 0)


def test_heatmaps_show_the_dataset_values():
    ds = similarity_ds()
    fig = cka_heatmaps(ds, "random", steps=["step1", "step64"])
    axes = np.array(fig.axes[:4]).reshape(2, 2)  # the colorbar's axes come last
    for r, var in enumerate(("cka_layers", "cka_layers_debiased")):
        for c, step in enumerate(("step1", "step64")):
            shown = axes[r, c].images[0].get_array()
            want = ds[var].sel(step=step, corpus="random").transpose("layer", "layer_other")
            np.testing.assert_array_equal(np.asarray(shown), want.values)
            assert step in axes[r, c].get_title() and "n = 1024" in axes[r, c].get_title()
            assert axes[r, c].images[0].get_clim() == (0.0, 1.0)
    plt.close(fig)
    fig = cka_heatmaps(ds, "docs")  # default checkpoints: spread over training, last included
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert len(titles) == 8 and titles[3].startswith("step64")
    plt.close(fig)


@pytest.mark.parametrize("numbers", [None, [0, 1, 4, 16, np.nan]])
def test_cka_to_final_one_line_per_layer(numbers):
    ds = similarity_ds(numbers)
    fig = cka_to_final_by_step(ds)
    axes = np.array(fig.axes).reshape(2, 2)
    for r, var in enumerate(("cka_to_final", "cka_to_final_debiased")):
        for c, corpus in enumerate(CORPORA):
            lines = axes[r, c].get_lines()
            assert len(lines) == len(LAYERS)
            for i, layer in enumerate(LAYERS):
                np.testing.assert_array_equal(
                    lines[i].get_ydata(), ds[var].sel(corpus=corpus, layer=layer).values
                )
                if numbers is None:  # step numbers on a symlog axis
                    np.testing.assert_array_equal(lines[i].get_xdata(), [0, 1, 4, 16, 64])
                else:  # a checkpoint without a number: an ordinal axis ticked with labels
                    np.testing.assert_array_equal(lines[i].get_xdata(), np.arange(len(STEPS)))
            if numbers is None:
                assert axes[r, c].get_xscale() == "symlog"
            else:
                ticks = [t.get_text() for t in axes[r, c].get_xticklabels()]
                assert ticks == STEPS
    plt.close(fig)


def test_alpha_req_by_step_from_a_synthetic_anisotropy_dataset():
    rng = np.random.default_rng(1)
    alpha = rng.uniform(0.5, 2.0, size=(len(STEPS), len(CORPORA), 2, len(LAYERS)))
    ds = xr.Dataset(
        {"alpha_req": (("step", "corpus", "positions", "layer"), alpha, {"long_name": "α-ReQ"})},
        coords={
            "step": STEPS,
            "corpus": CORPORA,
            "positions": ["all", "no_first"],
            "layer": LAYERS,
        },
    ).assign_coords(step_number=("step", [0.0, 1, 4, 16, 64]))
    for positions in ("all", "no_first"):
        fig = alpha_req_by_step(ds, positions=positions)
        for ax, corpus in zip(fig.axes, CORPORA, strict=True):
            lines = ax.get_lines()
            assert len(lines) == len(LAYERS) and ax.get_xscale() == "symlog"
            for i, layer in enumerate(LAYERS):
                want = ds.alpha_req.sel(corpus=corpus, positions=positions, layer=layer).values
                np.testing.assert_array_equal(lines[i].get_ydata(), want)
                np.testing.assert_array_equal(lines[i].get_xdata(), ds.step_number.values)
        plt.close(fig)
    fig = alpha_req_by_step(ds.sel(positions="all", drop=True))  # no positions dim
    np.testing.assert_array_equal(
        fig.axes[1].get_lines()[2].get_ydata(),
        ds.alpha_req.sel(corpus="random", positions="all", layer=2).values,
    )
    plt.close(fig)
    with pytest.raises(KeyError, match="no variable 'alpha_req'"):
        alpha_req_by_step(ds.drop_vars("alpha_req"))
