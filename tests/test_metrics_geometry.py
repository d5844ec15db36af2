"""All geometry metrics of one store: dims, positions variants, agreement with the parts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import xarray as xr
from scipy.spatial.distance import cdist

from repgeom.activations.source import ArraySource
from repgeom.metrics import geometry, neighbors
from repgeom.metrics.anisotropy import anisotropy
from repgeom.metrics.dimensions import DimensionOptions
from repgeom.metrics.estimators import REGISTRY, Estimator, Variable
from repgeom.metrics.family import mean_cosine
from repgeom.metrics.frequency import FrequencyOptions, token_counts
from repgeom.metrics.geometry import GeometryOptions, geometry_datasets
from repgeom.metrics.intrinsic import twonn
from repgeom.metrics.linearity import linearity
from repgeom.metrics.origins import Origins, layer_origins
from repgeom.sampling import seeded_subsample
from repgeom.shape_of_learning.plan import tables
from repgeom.workflow.config import options, schema_defaults


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
    with pytest.raises(ValueError, match=r"'metrics.geometry': unknown key.*id_smaple"):
        geometry_options(id_smaple=10)
    with pytest.raises(ValueError, match="positions"):
        geometry_options(positions=["middle"])


def count_searches(monkeypatch) -> list[int]:
    """Record the number of points of every exact neighbour search (neighbors.knn)."""
    calls: list[int] = []
    search = neighbors.knn

    def counted(query, *args, **kwargs):
        calls.append(len(query))
        return search(query, *args, **kwargs)

    monkeypatch.setattr(neighbors, "knn", counted)
    return calls


def test_one_neighbour_search_per_subsample_feeds_every_estimator(source, monkeypatch):
    calls = count_searches(monkeypatch)
    o = geometry_options(id_sample=300, id_repeats=2, top_k=4, mle_k=6, twonn_bootstrap=10)
    ids = geometry_datasets(source, o)["intrinsic_dimension"]
    # 2 token sets × 3 layers × 2 repeats; each search's distances feed every estimator
    assert len(calls) == 2 * 3 * 2 and set(calls) == {300}
    estimators = {v.name for e in REGISTRY.values() for v in e.variables}
    assert estimators <= set(ids.data_vars)
    assert np.isfinite(ids[["twonn", "twonn_error", "twonn_microscope", "mle"]].to_array()).all()
    assert np.isfinite(ids.gride.sel(scale=[1, 2, 4, 8, 16, 32, 64])).all()


TOY = Estimator(
    variables=(Variable("toy", "mean distance to the third neighbour", "1"),),
    dims=("repeat",),
    ranks=lambda o, n: (3,),
    estimate=lambda nb, o: (float(nb.at(3).mean()),),
)


def test_a_registered_estimator_appears_in_the_datasets_and_tables(source, monkeypatch):
    """What docs/contributing.md's "Adding an intrinsic-dimension estimator" promises: one registry entry and
    the geometry job computes it from the same search, with its attrs, and the
    Shape-of-Learning table lists it."""
    registry = {**REGISTRY, "toy": TOY}
    monkeypatch.setattr(geometry, "REGISTRY", registry)
    calls = count_searches(monkeypatch)
    o = geometry_options(positions=["all"], id_sample=200, id_repeats=2, top_k=4)
    ids = geometry_datasets(source, o)["intrinsic_dimension"]
    assert len(calls) == 3 * 2  # still one search per subsample
    assert ids.toy.dims == ("positions", "layer", "repeat")
    assert ids.toy.attrs == {"long_name": "mean distance to the third neighbour", "units": "1"}
    sample = seeded_subsample(source.n_tokens, 200, o.seed, 1)
    x = source.read(2, sample).astype(np.float64)
    third = np.sort(cdist(x, x), axis=1)[:, 3]  # column 0 is the point itself
    assert float(ids.toy.sel(positions="all", layer=2, repeat=1)) == pytest.approx(
        third.mean(), rel=1e-12
    )
    assert "toy" in tables(gride=True, registry=registry)["intrinsic_dimension"]
    assert "toy" not in tables(gride=True)["intrinsic_dimension"]


def test_geometry_options_are_the_schema_section():
    """Every key of metrics.geometry is a field without a default (defaults live in the schema)."""
    fields = dataclasses.fields(GeometryOptions)
    assert [f.name for f in fields] == list(schema_defaults("metrics.geometry"))
    assert all(f.default is dataclasses.MISSING for f in fields)
    o = geometry_options(positions=["all"], layers=[0, -1])
    assert o.positions == ("all",) and o.layers == (0, -1)
    assert o.attrs()["positions"] == ["all"] and "layers" not in o.attrs()


def spectrum64(x: np.ndarray) -> np.ndarray:
    """Eigenvalues of the centred scatter matrix, float64 numpy, descending."""
    xc = x.astype(np.float64) - x.astype(np.float64).mean(0)
    return np.linalg.svd(xc, compute_uv=False) ** 2


@pytest.mark.parametrize(("first", "last"), [(1, None), (2, 10)])
def test_rankme_and_alpha_req_are_those_of_the_spectrum(source, first, last):
    """RankMe and α-ReQ from the spectrum the anisotropy pass computes, against float64 SVDs of
    the centred tokens (singular values σ = √λ; the fit over ranks first…last, capped at the
    ranks the tokens span)."""
    o = geometry_options(
        positions=["all"], id_sample=100, id_repeats=1, alpha_req_first=first, alpha_req_last=last
    )
    anis = geometry_datasets(source, o)["anisotropy"].sel(positions="all")
    for layer in source.layers:
        lam = spectrum64(source.read(layer))
        sigma = np.sqrt(lam) / np.sqrt(lam).sum()
        rankme = np.exp(-(sigma * np.log(sigma)).sum())
        assert float(anis.rankme.sel(layer=layer)) == pytest.approx(rankme, rel=1e-9)
        stop = len(lam) if last is None else last
        ranks = np.arange(first, stop + 1)
        slope = np.polyfit(np.log(ranks), np.log(lam[first - 1 : stop]), 1)[0]
        assert float(anis.alpha_req.sel(layer=layer)) == pytest.approx(-slope, rel=1e-8)
    assert anis.rankme.attrs["long_name"].startswith("RankMe")


def test_alpha_req_stops_at_the_ranks_the_tokens_span():
    """With fewer tokens than dims, only tokens − 1 eigenvalues are nonzero: the fit stops there
    (rounding-level eigenvalues would bend it)."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 12, 40)) * (np.arange(1, 41) ** -1.0)
    src = ArraySource(x.astype(np.float32))
    anis = geometry_datasets(src, geometry_options(positions=["all"], id_sample=6, mle_k=3))
    lam = spectrum64(src.read(0))[:11]
    slope = np.polyfit(np.log(np.arange(1, 12)), np.log(lam), 1)[0]
    assert float(anis["anisotropy"].alpha_req.sel(positions="all", layer=0)) == pytest.approx(
        -slope, rel=1e-6
    )


def test_repeats_of_the_whole_store_are_refused_by_name(source):
    """id_sample ≥ the tokens: every repeat would be the same set (a spread of 0)."""
    with pytest.raises(ValueError) as err:
        geometry_datasets(source, geometry_options(id_sample=100000, id_repeats=2))
    message = str(err.value)
    assert "metrics.geometry.id_sample" in message and "1200 tokens" in message
    assert "id_repeats: 1" in message
    # the no_first variant has fewer tokens (1170): a sample between the two is refused there
    with pytest.raises(ValueError, match="1170 tokens without position 0"):
        geometry_datasets(source, geometry_options(id_sample=1180, id_repeats=2))


def test_one_repeat_uses_every_token_and_records_the_size(source):
    out = geometry_datasets(
        source, geometry_options(id_sample=100000, id_repeats=1, positions=["all"])
    )
    ids = out["intrinsic_dimension"]
    assert int(ids.id_sample_used.sel(positions="all")) == 1200
    assert float(ids.twonn.sel(positions="all", layer=1, repeat=0)) == pytest.approx(
        twonn(source.read(1)).value, rel=1e-12
    )


def _origins(counts: np.ndarray, **frequency) -> Origins:
    return Origins(
        options(DimensionOptions, "metrics.dimensions", {"top_k": 4, "without_top": [1, 3]}),
        options(FrequencyOptions, "metrics.frequency", {"n_buckets": 3, **frequency}),
        counts,
    )


@pytest.mark.parametrize("token_budget", [None, 500])
def test_where_anisotropy_comes_from_on_the_same_reads(source, token_budget):
    """With the origins the three datasets are unchanged (the family rides on their first
    read: the same float64 sums), and rogue dimensions, massive activations and the frequency
    buckets use every token of each token set, whatever the token budget; the drift's exact
    principal direction comes from the family's scatter where it reads the same tokens."""
    rng = np.random.default_rng(1)
    src = ArraySource(source.hidden, source.position, token_id=rng.integers(0, 30, 1200))
    counts = token_counts(rng.integers(0, 25, 4000), 30)
    o = geometry_options(id_sample=200, id_repeats=1, token_budget=token_budget)
    alone = geometry_datasets(src, o)
    out = geometry_datasets(src, o, _origins(counts, direction_sample=None))
    for name, ds in alone.items():
        xr.testing.assert_identical(out[name], ds)
    dims, freq = out["dimensions"], out["frequency"]
    assert dims["rogue_dimension"].dims == ("positions", "layer", "rogue_rank")
    assert freq["mean_cosine"].dims == ("positions", "layer", "bucket")
    assert freq["count_low"].dims == ("bucket",) and int(freq["train_tokens"]) == 4000
    assert (
        dims.attrs["positions"] == ["all", "no_first"] and freq.attrs["direction_sample"] == "all"
    )
    keep = src.position != 0
    for positions, rows in (("all", None), ("no_first", np.flatnonzero(keep))):
        for layer in src.layers:
            at = {"positions": positions, "layer": layer}
            x = src.read(layer, rows)
            assert int(dims["n_tokens"].sel(**at)) == len(x)
            assert float(dims["mean_cosine"].sel(**at)) == pytest.approx(mean_cosine(x), rel=1e-9)
            # without the family: the frequency pass with its own scatter, on its own reads
            ref = layer_origins(src, layer, rows, _origins(counts, direction_sample=None)).frequency
            got = freq.sel(**at)
            np.testing.assert_array_equal(got["n_tokens"], ref.n_tokens)
            np.testing.assert_allclose(got["mean_cosine"], ref.mean_cosine, rtol=1e-12)
            np.testing.assert_allclose(got["drift_pearson"], ref.drift_pearson, atol=1e-9)
            assert int(got["n_direction_tokens"]) == len(x)


def test_a_rogue_option_the_hidden_size_cannot_hold_is_refused_by_name(source):
    too_many = Origins(
        options(DimensionOptions, "metrics.dimensions", {"top_k": 17}),
        options(FrequencyOptions, "metrics.frequency", {}),
        np.ones(3, dtype=np.int64),
    )
    with pytest.raises(ValueError, match="metrics.dimensions.top_k"):
        geometry_datasets(source, geometry_options(id_sample=100, id_repeats=1), too_many)
