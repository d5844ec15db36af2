"""All geometry metrics of one store: dims, positions variants, agreement with the parts."""

from __future__ import annotations

import numpy as np
import pytest

from repgeom.activations.source import ArraySource
from repgeom.metrics.anisotropy import anisotropy
from repgeom.metrics.family import mean_cosine
from repgeom.metrics.geometry import GeometryOptions, geometry_datasets
from repgeom.metrics.intrinsic import twonn
from repgeom.metrics.linearity import linearity
from repgeom.workflow.config import options


def geometry_options(**section) -> GeometryOptions:
    return options(GeometryOptions, "metrics.geometry", section)


@pytest.fixture
def source():
    rng = np.random.default_rng(0)
    hidden = rng.normal(size=(3, 1200, 16)) * np.linspace(1, 3, 16)
    hidden[:, ::40] += 80.0
    hidden[2] = hidden[1] @ rng.normal(size=(16, 16))
    return ArraySource(hidden.astype(np.float32), position=np.tile(np.arange(40), 30))


def test_geometry_datasets(source):
    out = geometry_datasets(source, geometry_options(id_sample=500, id_repeats=2, top_k=4))
    anis, ids, lin = out["anisotropy"], out["intrinsic_dimension"], out["linearity"]
    assert anis.anisotropy.dims == ("positions", "layer")
    assert list(anis.positions.values) == ["all", "no_first"]
    assert ids.twonn.dims == ("positions", "layer", "repeat") and ids.sizes["repeat"] == 2
    keep = source.position != 0
    for layer in source.layers:
        x = source.read(layer)
        assert anis.anisotropy.sel(positions="all", layer=layer) == pytest.approx(
            anisotropy(x), rel=1e-8
        )
        assert anis.anisotropy.sel(positions="no_first", layer=layer) == pytest.approx(
            anisotropy(x[keep]), rel=1e-8
        )
        assert anis.mean_cosine.sel(positions="all", layer=layer) == pytest.approx(
            mean_cosine(x), rel=1e-9
        )
        assert anis.anisotropy_power.sel(positions="all", layer=layer) == pytest.approx(
            float(anis.anisotropy.sel(positions="all", layer=layer)), rel=1e-6
        )
    assert int(anis.n_tokens.sel(positions="no_first")) == 1170
    assert np.isnan(lin.linearity.sel(layer=0)).all()
    assert float(lin.linearity.sel(positions="all", layer=2)) == pytest.approx(1.0, abs=1e-8)
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(1200, 500, replace=False))
    assert float(ids.twonn.sel(positions="all", layer=1, repeat=0)) == pytest.approx(
        twonn(source.read(1, sample)).value, rel=1e-12
    )
    assert float(lin.linearity.sel(positions="all", layer=1)) == pytest.approx(
        linearity(source.read(0, sample), source.read(1, sample)), rel=1e-10
    )
    for ds in out.values():
        for var in ds.data_vars:
            assert {"long_name", "units"} <= set(ds[var].attrs)


def test_unknown_options_are_refused():
    with pytest.raises(ValueError, match=r"unknown option.*id_smaple.*metrics.geometry"):
        geometry_options(id_smaple=10)
    with pytest.raises(ValueError, match="positions"):
        geometry_options(positions=["middle"])
