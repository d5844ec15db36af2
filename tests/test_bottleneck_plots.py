"""Bottleneck figures return figures on small datasets; the best-vs-final table is correct."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr

from repgeom.bottleneck.plots import (
    best_vs_final_rows,
    best_vs_final_table,
    entropy_cosine_loss_vs_step,
    eval_loss_vs_step,
    perplexity_vs_rank,
    singular_spectrum_over_training,
    werror_vs_rank,
)
from repgeom.bottleneck.spectrum import lm_head_spectrum
from repgeom.plots.common import step_numbers

STEPS = ["step0", "step1", "step4", "step16", "final"]


def loss_ds(values):
    ds = xr.Dataset(
        {"eval_loss": ("step", np.array(values), {"long_name": "eval loss", "units": "nat"})},
        coords={"step": STEPS},
    )
    return ds


def test_step_numbers_from_labels_and_coord():
    ds = loss_ds([5, 4, 3, 3.5, 3.6])
    np.testing.assert_array_equal(step_numbers(ds), [0, 1, 4, 16, np.nan])
    ds = ds.assign_coords(step_number=("step", [0, 1, 4, 16, 20]))
    np.testing.assert_array_equal(step_numbers(ds), [0, 1, 4, 16, 20])


def test_figures_are_built():
    rng = np.random.default_rng(0)
    losses = {"a": loss_ds([5.0, 4.0, 3.0, 3.2, 3.3]), "b": loss_ds([5.0, 4.5, 4.0, 3.9, 3.8])}
    figs = [eval_loss_vs_step(losses, title="t")]
    spectra = xr.concat(
        [lm_head_spectrum(rng.standard_normal((40, 8)) * (i + 1)) for i in range(4)], dim="step"
    ).assign_coords(step=STEPS[:4])
    figs.append(singular_spectrum_over_training(spectra))
    series = {
        "a": xr.merge(
            [
                spectra[["singular_entropy"]],
                xr.Dataset({"mean_cosine": ("step", [0.1, 0.3, 0.5, 0.6])}, {"step": STEPS[:4]}),
                loss_ds([5.0, 4.0, 3.0, 3.2, 3.3]),
            ],
            join="outer",
        )
    }
    fig = entropy_cosine_loss_vs_step(series)
    assert len(fig.axes) == 3
    assert fig.axes[0].get_shared_x_axes().joined(fig.axes[0], fig.axes[2])
    figs.append(fig)
    heads = xr.Dataset(
        {
            "perplexity": ("rank", [50.0, 20.0, 12.0, 11.0]),
            "full_rank_perplexity": 10.5,
            "model_head_perplexity": 10.0,
        },
        coords={"rank": [1, 2, 4, 8]},
    )
    figs.append(perplexity_vs_rank({"m": heads}))
    figs.append(perplexity_vs_rank(heads))
    werr = xr.Dataset({"werror": ("rank", [1.0, 0.7, 0.4, 0.2])}, coords={"rank": [0, 1, 2, 4]})
    figs.append(werror_vs_rank({"corpus × tok": werr, "other": werr * 0.9}))
    # the plotted values are the datasets' (first line of each figure)
    first = [f.axes[0].lines[0].get_ydata() for f in figs]
    # "final" has no step number: every checkpoint is shown on an ordinal axis, by label
    np.testing.assert_array_equal(first[0], losses["a"].eval_loss)
    np.testing.assert_array_equal(figs[0].axes[0].lines[0].get_xdata(), np.arange(5))
    assert [t.get_text() for t in figs[0].axes[0].get_xticklabels()] == STEPS
    np.testing.assert_array_equal(first[3], heads.perplexity)
    np.testing.assert_array_equal(first[5], werr.werror)
    labels = [line.get_label() for line in figs[5].axes[0].lines]
    assert labels[:2] == ["corpus × tok", "other"]
    for f in figs:
        plt.close(f)
    with pytest.raises(ValueError, match="1-D over 'step'"):
        eval_loss_vs_step({"a": spectra}, var="sigma")


def test_best_vs_final_table():
    losses = {"small_m": loss_ds([5.0, 4.0, 3.0, 3.2, 3.3]), "big": loss_ds([5.0, 4.5, 4, 3.9, 1])}
    rows = best_vs_final_rows(losses)
    # "final" has no step number: never the final checkpoint while numbered ones exist (a
    # checkpoint-best link or a 'main' branch is not the end of training); step16 is
    assert rows[0] == {
        "model": "small_m",
        "best_step": "step4",
        "best_loss": 3.0,
        "final_step": "step16",
        "final_loss": 3.2,
        "final_minus_best": pytest.approx(0.2),
        "relative_gap": pytest.approx(0.2 / 3.0),
    }
    assert (rows[1]["best_step"], rows[1]["final_step"]) == ("final", "step16")
    # numbered checkpoints: the final one is the largest step, whatever the order given
    numbered = loss_ds([5.0, 4.0, 3.0, 3.2, 3.3]).assign_coords(
        step_number=("step", [0, 1, 4, 16, 2])
    )
    (row,) = best_vs_final_rows({"m": numbered})
    assert (row["final_step"], row["final_loss"]) == ("step16", 3.2)
    csv, tex = best_vs_final_table(losses)
    lines = csv.strip().splitlines()
    assert lines[0].startswith("model,best_step,best_loss")
    assert lines[1].split(",")[:3] == ["small_m", "step4", "3"]
    assert r"small\_m" in tex and r"\toprule" in tex and "6.67\\%" in tex
