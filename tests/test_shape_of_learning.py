"""The Shape-of-Learning plan (tables from the estimator registry) and the spread over repeats."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from repgeom.metrics.estimators import repeat_spread
from repgeom.shape_of_learning.plan import FIGURES, tables
from repgeom.shape_of_learning.plots import _mean_spread, metric_table


def test_tables_list_the_registry_variables_per_subsample():
    ids = ["twonn", "twonn_error", "twonn_microscope", "mle", "n_duplicates"]
    reported = ["gride_at_scale", "gride_at_scale_error", "twonn_gride_disagree"]
    assert tables(gride=False)["intrinsic_dimension"] == ids  # per-scale GRIDE is not a column
    assert tables(gride=True)["intrinsic_dimension"] == ids + reported
    assert list(tables(gride=True)) == ["anisotropy", "intrinsic_dimension", "linearity"]
    assert FIGURES["mle_by_layer"] == ("intrinsic_dimension", "mle")


def test_repeat_spread_is_the_sample_standard_deviation():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(4, 5))
    np.testing.assert_allclose(repeat_spread(v), v.std(axis=-1, ddof=1), rtol=1e-15)
    np.testing.assert_allclose(repeat_spread(v, axis=0), v.std(axis=0, ddof=1), rtol=1e-15)
    assert np.isnan(repeat_spread(np.array([3.0])))  # one repeat has no spread
    assert (
        repeat_spread(np.ones((2, 1))).shape == (2,)
        and np.isnan(repeat_spread(np.ones((2, 1)))).all()
    )


def gathered(repeats: int) -> xr.Dataset:
    rng = np.random.default_rng(1)
    shape = (2, 1, 1, 3, repeats)
    dims = ("step", "corpus", "positions", "layer", "repeat")
    return xr.Dataset(
        {"twonn": (dims, rng.normal(10, 2, size=shape), {"long_name": "TwoNN", "units": "1"})},
        coords={
            "step": ["step0", "step8"],
            "corpus": ["docs"],
            "positions": ["all"],
            "layer": [0, 1, 2],
            "repeat": np.arange(repeats),
        },
    )


@pytest.mark.parametrize("repeats", [1, 3])
def test_tables_and_bands_use_the_one_spread(repeats):
    ds = gathered(repeats)
    rows = metric_table({"m": ds}, ["twonn"])
    values = ds["twonn"].sel(step="step8", corpus="docs", positions="all", layer=2).values
    row = rows[-1]
    assert (row["step"], row["layer"]) == ("step8", 2)
    assert row["twonn"] == pytest.approx(values.mean(), rel=1e-15)
    mean, band = _mean_spread(ds["twonn"])
    if repeats == 1:
        assert np.isnan(row["twonn_std"]) and np.isnan(band).all()
    else:
        assert row["twonn_std"] == pytest.approx(values.std(ddof=1), rel=1e-15)
        np.testing.assert_allclose(band.values, ds["twonn"].std("repeat", ddof=1).values)
    assert band.dims == mean.dims == ("step", "corpus", "positions", "layer")


def test_the_plan_loads_without_torch_or_scipy():
    """The workflow imports the plan (and so the estimator registry) whenever it plans."""
    code = (
        "import sys, repgeom.shape_of_learning.plan; "
        "print(sorted({'torch', 'scipy'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
