"""The published conventions of metrics.geometry.conventions: RankMe, α-ReQ, LLM-Microscope's
TwoNN, last-token pooling; each recorded in the datasets and never mixed by a gather."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from repgeom.activations.source import ArraySource
from repgeom.metrics.frequency import _spectrum_metrics
from repgeom.metrics.gather import gather
from repgeom.metrics.geometry import GeometryOptions, geometry_datasets, id_of_sample
from repgeom.metrics.layerwise import last_token_rows
from repgeom.workflow.config import options


def geometry_options(conventions: dict | None = None, **section) -> GeometryOptions:
    return options(
        GeometryOptions, "metrics.geometry", {**section, "conventions": conventions or {}}
    )


def llm_microscope_id():
    """LLM-Microscope 0.0.7's ``intrinsic_dimension``, loaded from its functions.py (the
    package's ``__init__`` imports a module its wheel lacks)."""
    spec = importlib.util.find_spec("llm_microscope")
    assert spec is not None, "llm-microscope==0.0.7 is in the test extra"
    path = Path(next(iter(spec.submodule_search_locations))) / "functions.py"
    module_spec = importlib.util.spec_from_file_location("llm_microscope_functions", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return lambda x: module.intrinsic_dimension(torch.from_numpy(np.asarray(x)), "cpu")


def planted_spectrum(lam: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """n rows whose centred scatter has exactly the eigenvalues ``lam`` (float64)."""
    rng = np.random.default_rng(seed)
    d = len(lam)
    z = rng.normal(size=(n, d))
    z -= z.mean(axis=0)
    q, _ = np.linalg.qr(z)  # orthonormal, centred columns
    rot, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return 5.0 + (q * np.sqrt(lam)) @ rot


def rankme_garrido(lam: np.ndarray) -> float:
    s = np.sqrt(lam[lam > 0])
    p = s / s.sum()
    return math.exp(-sum(pk * math.log(pk) for pk in p))


def rankme_tracing(lam: np.ndarray) -> float:
    p = [lk / sum(lam) + 1e-7 for lk in lam]
    return math.exp(-sum(pk * math.log(pk) for pk in p))


def test_rankme_both_conventions_equal_the_closed_form_of_a_planted_spectrum():
    lam = np.array([4.0, 1.0, 1.0, 0.25, 0.1, 0.05, 0.02, 0.01])
    x = planted_spectrum(lam, 400)  # stored as float32: λ to about 1e-7
    ds = geometry_datasets(ArraySource(x[None]), geometry_options(id_sample=50, id_repeats=1))
    assert float(ds["anisotropy"].rankme.sel(positions="all", layer=0)) == pytest.approx(
        rankme_garrido(lam), rel=1e-5
    )
    tracing = geometry_options({"rankme": "tracing"}, id_sample=50, id_repeats=1)
    ds = geometry_datasets(ArraySource(x[None]), tracing)
    assert float(ds["anisotropy"].rankme.sel(positions="all", layer=0)) == pytest.approx(
        rankme_tracing(lam), rel=1e-6
    )
    # a flat spectrum of m: m under garrido; under tracing the ε terms, in closed form
    m, d, eps = 5, 8, 1e-7
    flat = np.array([1.0] * m + [0.0] * (d - m))
    closed = math.exp(-(m * (1 / m + eps) * math.log(1 / m + eps) + (d - m) * eps * math.log(eps)))
    assert rankme_garrido(flat) == pytest.approx(m)
    x = planted_spectrum(flat, 300, seed=1)
    ds = geometry_datasets(ArraySource(x[None]), tracing)
    assert float(ds["anisotropy"].rankme.sel(positions="all", layer=0)) == pytest.approx(
        closed, rel=1e-6
    )


@pytest.mark.parametrize("alpha", [0.7, 1.3])
def test_both_alpha_req_fits_return_the_exponent_of_a_power_law(alpha):
    d = 128
    lam = np.arange(1, d + 1, dtype=float) ** -alpha
    x = planted_spectrum(lam, 2000, seed=2)
    for convention in ("repgeom", "tracing"):
        o = geometry_options({"alpha_req": convention}, id_sample=50, id_repeats=1)
        ds = geometry_datasets(ArraySource(x[None]), o)
        found = float(ds["anisotropy"].alpha_req.sel(positions="all", layer=0))
        assert found == pytest.approx(alpha, rel=1e-6), convention
        assert str(ds["anisotropy"].alpha_req_convention.values) == convention


def test_tracing_alpha_req_fits_ranks_11_to_99_weighted():
    """Off a power law the two fits differ; tracing's is a 1/i-weighted fit over 11…99."""
    d = 160
    ranks = np.arange(1, d + 1, dtype=float)
    lam = ranks**-1.0 * np.exp(0.3 * np.sin(ranks / 7))
    x = planted_spectrum(lam, 3000, seed=3)
    o = geometry_options({"alpha_req": "tracing"}, id_sample=50, id_repeats=1)
    found = float(geometry_datasets(ArraySource(x[None]), o)["anisotropy"].alpha_req[0, 0])
    i = np.arange(11, 100)
    w = 1.0 / i
    ranked = np.sort(lam)[::-1]
    slope = np.polyfit(np.log(i), np.log(ranked[10:99]), 1, w=np.sqrt(w))[0]  # weights √w
    assert found == pytest.approx(-slope, rel=1e-6)
    repgeom = geometry_options(id_sample=50, id_repeats=1)
    other = float(geometry_datasets(ArraySource(x[None]), repgeom)["anisotropy"].alpha_req[0, 0])
    assert abs(other - found) > 1e-3


def test_frequency_bucket_rankme_follows_the_convention():
    rng = np.random.default_rng(4)
    for n in (20, 200):  # the Gram path (n ≤ d) and the scatter path
        x = rng.normal(size=(n, 48)) * np.linspace(1, 4, 48)
        s = np.linalg.svd(x - x.mean(axis=0), compute_uv=False)
        _, tracing = _spectrum_metrics(x, "tracing")
        assert tracing == pytest.approx(rankme_tracing(s**2), rel=1e-7)
        _, garrido = _spectrum_metrics(x)
        assert garrido == pytest.approx(rankme_garrido(s**2), rel=1e-7)


def duplicated_rows(n: int, d: int, dup: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(n, 6)) @ rng.normal(size=(6, d))).astype(np.float32)
    x[n - dup :] = x[rng.integers(0, n - dup, dup)]
    return x


@pytest.mark.parametrize("dup", [0, 3, 60])
def test_llm_microscope_convention_equals_the_package_on_the_same_rows(dup):
    reference = llm_microscope_id()
    x = duplicated_rows(400, 32, dup, seed=dup)
    o = geometry_options({"twonn_microscope": "llm_microscope"}, id_sample=400, id_repeats=1)
    found = id_of_sample(x, o)["twonn_microscope"]
    assert found == pytest.approx(reference(x), rel=1e-6)  # its CDF is float32
    ours = id_of_sample(x, geometry_options(id_sample=400, id_repeats=1))["twonn_microscope"]
    assert (abs(ours - found) > 1e-3) == (dup > 0)  # the conventions part only on duplicates


def test_llm_microscope_convention_in_the_geometry_datasets():
    reference = llm_microscope_id()
    hidden = np.stack([duplicated_rows(300, 24, 20, seed=s) for s in (5, 6)])
    o = geometry_options(
        {"twonn_microscope": "llm_microscope"}, id_sample=300, id_repeats=1, positions=["all"]
    )
    ids = geometry_datasets(ArraySource(hidden), o)["intrinsic_dimension"]
    for layer in (0, 1):
        assert float(ids.twonn_microscope.sel(positions="all", layer=layer, repeat=0)) == (
            pytest.approx(reference(hidden[layer]), rel=1e-6)
        )


def test_last_token_pooling_uses_the_last_token_of_each_sequence():
    rng = np.random.default_rng(7)
    lengths = rng.integers(1, 9, size=60)
    sequence = np.repeat(np.arange(60), lengths)
    position = np.concatenate([np.arange(k) for k in lengths])
    perm = rng.permutation(len(sequence))  # not stored in sequence order
    sequence, position = sequence[perm], position[perm]
    expected = sorted(
        max(np.flatnonzero(sequence == s), key=lambda r: position[r]) for s in range(60)
    )
    assert last_token_rows(sequence, position).tolist() == expected
    hidden = rng.normal(size=(1, len(sequence), 12)) + np.linspace(0, 3, 12)
    source = ArraySource(hidden.astype(np.float32), position=position, sequence=sequence)
    o = geometry_options({"pooling": "last_token"}, id_sample=40, id_repeats=1, mle_k=5)
    anis = geometry_datasets(source, o)["anisotropy"]
    for positions, rows in (
        ("all", expected),
        ("no_first", [r for r in expected if position[r] != 0]),  # one-token sequences out
    ):
        x = hidden[0][rows].astype(np.float32).astype(np.float64)
        y = x - x.mean(axis=0)
        lam = np.linalg.eigvalsh(y.T @ y)
        assert float(anis.anisotropy.sel(positions=positions, layer=0)) == pytest.approx(
            lam[-1] / lam.sum(), rel=1e-9
        )
        assert int(anis.n_tokens.sel(positions=positions)) == len(rows)
    assert str(anis.pooling.values) == "last_token"


def test_conventions_are_coordinates_and_a_gather_refuses_to_mix_them():
    rng = np.random.default_rng(8)
    source = ArraySource(rng.normal(size=(2, 200, 8)).astype(np.float32))
    runs = {}
    for rankme in ("garrido", "tracing"):
        o = geometry_options({"rankme": rankme}, id_sample=50, id_repeats=1)
        runs[rankme] = geometry_datasets(source, o)
        for name, ds in runs[rankme].items():
            assert str(ds.rankme_convention.values) == rankme, name
            assert str(ds.final_norm.values) == "after" and str(ds.pooling.values) == "all"
    same = {(s, "c"): runs["garrido"]["anisotropy"] for s in ("1", "2")}
    assert str(gather(same, ["1", "2"], ["c"]).rankme_convention.values) == "garrido"
    mixed = {("1", "c"): runs["garrido"]["anisotropy"], ("2", "c"): runs["tracing"]["anisotropy"]}
    with pytest.raises(ValueError, match="different conventions.*garrido.*tracing"):
        gather(mixed, ["1", "2"], ["c"])
    # side by side: the convention is the dimension they concatenate on
    both = xr.concat(
        [runs[r]["anisotropy"] for r in ("garrido", "tracing")], dim="rankme_convention"
    )
    assert list(both.rankme_convention.values) == ["garrido", "tracing"]
    assert float(both.rankme.sel(rankme_convention="garrido")[0, 0]) != float(
        both.rankme.sel(rankme_convention="tracing")[0, 0]
    )


def test_an_unknown_convention_is_refused_by_name():
    with pytest.raises(Exception, match="conventions"):
        geometry_options({"rankme": "sigma"})


def test_final_norm_before_reads_the_norm_input_at_the_last_layer_only():
    rng = np.random.default_rng(9)
    hidden = (rng.normal(size=(3, 300, 16)) + np.linspace(0, 2, 16)).astype(np.float32)
    pre = (rng.normal(size=(300, 16)) * np.linspace(1, 5, 16) + 3.0).astype(np.float32)
    source = ArraySource(hidden, pre_final_norm=pre)
    after = geometry_datasets(source, geometry_options(id_sample=60, id_repeats=1))["anisotropy"]
    o = geometry_options({"final_norm": "before"}, id_sample=60, id_repeats=1)
    before = geometry_datasets(source, o)["anisotropy"]
    for ds, last in ((after, hidden[2]), (before, pre)):
        y = last.astype(np.float64) - last.astype(np.float64).mean(axis=0)
        lam = np.linalg.eigvalsh(y.T @ y)
        assert float(ds.anisotropy.sel(positions="all", layer=2)) == pytest.approx(
            lam[-1] / lam.sum(), rel=1e-9
        )
    xr.testing.assert_equal(  # the other layers are the same states
        after.anisotropy.sel(layer=[0, 1]).drop_vars("final_norm"),
        before.anisotropy.sel(layer=[0, 1]).drop_vars("final_norm"),
    )
    assert str(before.final_norm.values) == "before"
    lacking = ArraySource(hidden, has_final_norm=True)  # a store extracted without it
    with pytest.raises(ValueError, match="rerun the extraction.*final_norm: before"):
        geometry_datasets(lacking, o)
