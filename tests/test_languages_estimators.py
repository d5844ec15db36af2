"""The languages study's intrinsic-dimension vocabulary is the estimator registry's: its names,
the variables' long_name and units, the subsample loop, and the repeats rule of the geometry
job (issue 30)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from repgeom.languages.compute import language_dataset, paired_bootstrap_diff
from repgeom.languages.datasets import grammaticality_dataset, study_dataset
from repgeom.languages.estimates import (
    ID_ALIASES,
    ID_ESTIMATORS,
    ID_OPTIONS,
    IDFunction,
    id_estimator,
)
from repgeom.metrics.estimators import REGISTRY, estimate_sample, spread_variable, variables
from repgeom.sampling import seeded_subsample
from repgeom.workflow.config import load_yaml
from tests.test_languages_datasets import GROUPS, FakeStore
from tests.workflow import ROOT


@pytest.fixture(scope="module")
def stores():
    rng = np.random.default_rng(3)
    out = {}
    for i, c in enumerate(["s-Latn", "s-Cyrl", "s-Grek", "p-good", "p-bad"]):
        basis = rng.normal(size=(3, 8))
        sent = rng.normal(size=(2, 40, 3)) @ basis + 0.01 * rng.normal(size=(2, 40, 8))
        tok = rng.normal(size=(2, 20 + 5 * i, 3)) @ basis
        out[c] = FakeStore(sent.astype(np.float32), tok.astype(np.float32))
    return out


def attrs_of(v) -> dict[str, str]:
    return {"long_name": v.long_name, "units": v.units}


def test_the_names_are_the_registrys_and_the_duplicate_is_an_alias():
    assert ID_ESTIMATORS == ("twonn", "twonn_microscope")
    assert set(ID_ESTIMATORS) <= set(REGISTRY)
    # one TwoNN: skdim_twonn is no estimator of its own, only another name for twonn
    assert ID_ALIASES == {"skdim_twonn": "twonn"} and not set(ID_ALIASES) & set(ID_ESTIMATORS)
    assert id_estimator("skdim_twonn") == "twonn" == IDFunction("skdim_twonn", 10).estimator
    assert IDFunction("skdim_twonn", 10) == IDFunction("twonn", 10)
    with pytest.raises(ValueError, match=r"unknown ID estimator 'mle'.*skdim_twonn = twonn"):
        id_estimator("mle")
    # the config accepts exactly the names and the aliases, and documents the alias
    schema = load_yaml(ROOT / "config" / "schema" / "languages.yaml")["properties"]
    key = schema["id_estimator"]
    assert set(key["enum"]) == {*ID_ESTIMATORS, *ID_ALIASES}
    assert "skdim_twonn is an alias of twonn" in " ".join(key["description"].split())


def test_the_subsample_loop_is_the_geometry_jobs():
    """Each repeat: seeded_subsample(n, sample, seed, r), one estimate_sample of the registry."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 4)) @ rng.normal(size=(4, 10))
    for name in ID_ESTIMATORS:
        got = IDFunction(name, sample=50, repeats=3, seed=9, gride_scales=3)(x)
        want = [
            estimate_sample(x[seeded_subsample(len(x), 50, 9, r)], ID_OPTIONS, (name,))[name]
            for r in range(3)
        ]
        np.testing.assert_array_equal(got.values, want)
        first = estimate_sample(
            x[seeded_subsample(len(x), 50, 9, 0)],
            dataclasses.replace(ID_OPTIONS, gride_scales=3),
            ("gride",),
        )
        np.testing.assert_array_equal(got.gride, first["gride"])
        np.testing.assert_array_equal(got.gride_error, first["gride_error"])
        np.testing.assert_array_equal(IDFunction(name, 50, 3, 9)(x).values, want)


def test_id_variables_carry_exactly_the_registrys_attributes(stores):
    table = variables(REGISTRY)
    for name in ID_ESTIMATORS:
        registered = table[name][0]
        fn = IDFunction(name, sample=15, repeats=2, seed=4, gride_scales=3)
        ds = study_dataset(stores, GROUPS, fn, seed=4)
        assert {k: ds["id"].attrs[k] for k in ("long_name", "units")} == attrs_of(registered)
        spread = spread_variable(registered)
        assert {k: ds["id_std"].attrs[k] for k in ("long_name", "units")} == attrs_of(spread)
        assert spread.units == registered.units == "dimensions"
        for var in ("gride", "gride_error"):
            assert {k: ds[var].attrs[k] for k in ("long_name", "units")} == attrs_of(table[var][0])
        assert ds["gride_error"].attrs["units"] == "dimensions"  # not "1"
        boot = grammaticality_dataset(stores, GROUPS[1:], IDFunction(name, 15), n_boot=3)
        for var in ("id", "id_low", "id_high", "id_diff", "id_diff_low", "id_boot"):
            assert boot[var].attrs["units"] == registered.units, var
            assert registered.long_name in boot[var].attrs["long_name"], var
        assert boot["id"].attrs["long_name"] == registered.long_name
    # the alias gives the same dataset, attrs included
    a = study_dataset(stores, GROUPS, IDFunction("skdim_twonn", 15, 2, 4, 3), seed=4)
    b = study_dataset(stores, GROUPS, IDFunction("twonn", 15, 2, 4, 3), seed=4)
    assert a.identical(b)


def test_repeats_of_every_row_are_refused_by_name(stores):
    """id_repeats > 1 with id_sample ≥ a corpus's rows: every repeat the same rows (spread 0)."""
    with pytest.raises(ValueError) as err:
        study_dataset(stores, GROUPS, IDFunction("twonn", sample=40, repeats=2))
    msg = str(err.value)
    assert "config key 'languages.id_sample' (40)" in msg and "40 sentences of 's-Latn'" in msg
    assert "id_repeats: 1" in msg
    # the 40 sentences are subsampled, the 20 tokens of s-Latn are not
    with pytest.raises(ValueError, match=r"'languages.id_sample' \(30\).*20 tokens of 's-Latn'"):
        study_dataset(stores, GROUPS, IDFunction("twonn", sample=30, repeats=2))
    # the same rule in a dataset of arrays, naming the language
    sentence = {c: stores[c].sentences for c in ("s-Latn", "s-Cyrl")}
    with pytest.raises(ValueError, match="40 sentences of 's-Latn'"):
        language_dataset(sentence, None, "s-Latn", IDFunction("twonn", 50, 2))
    token = {c: stores[c].tokens for c in ("s-Latn", "s-Cyrl")}  # 20 and 25 tokens
    with pytest.raises(ValueError, match="20 tokens of 's-Latn' at layer 0"):
        language_dataset(sentence, token, "s-Latn", IDFunction("twonn", 20, 2))
    # one repeat uses every row once: allowed, and the spread is NaN (not 0)
    ds = study_dataset(stores, GROUPS, IDFunction("twonn", sample=1000, repeats=1))
    assert np.isnan(ds["id_std"].values).all() and np.isfinite(ds["id"].values).all()
    # below the rows, repeats differ: a spread above 0
    ds = study_dataset(stores, GROUPS, IDFunction("twonn", sample=15, repeats=2))
    assert (ds["id_std"].sel(level="sentence").values > 0).all()


def test_bootstrap_replicates_smaller_than_the_sample_are_one_estimate():
    """The bootstrap reports no spread: a replicate with at most id_sample distinct rows is
    estimated on all of them, whatever id_repeats (the value one repeat gives)."""
    rng = np.random.default_rng(2)
    good = rng.normal(size=(1, 30, 6))
    bad = rng.normal(size=(1, 30, 6))
    two = paired_bootstrap_diff(good, bad, IDFunction("twonn", 25, 2, 5), n_boot=4, seed=1)
    one = paired_bootstrap_diff(good, bad, IDFunction("twonn", 25, 1, 5), n_boot=4, seed=1)
    # replicates hold ≈ 63 % of 30 distinct pairs (< 25): identical; the full sample is not
    np.testing.assert_array_equal(two["id_boot"].values, one["id_boot"].values)
