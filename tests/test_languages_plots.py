"""Figures of the per-language study are built from datasets and return Figures."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from repgeom.languages.compute import language_dataset, mean_by_language, paired_bootstrap_diff
from repgeom.languages.plots import (
    divergence_by_layer,
    grammaticality_by_layer,
    score_correlation_scatter,
    script_groups_by_layer,
)
from repgeom.languages.transliteration import script_group, synthetic_code


def trace_ratio(x: np.ndarray) -> float:
    xc = x - x.mean(axis=0)
    s2 = np.linalg.svd(xc.astype(np.float64), compute_uv=False) ** 2
    return float(s2.sum() ** 2 / (s2**2).sum())


LANGS = ["eng_Latn", "srp_Cyrl", "srp_Latn", synthetic_code("eng_Latn", "Cyrl")]


@pytest.fixture(scope="module")
def ds():
    rng = np.random.default_rng(0)
    sentence = {lang: rng.normal(size=(3, 20, 5)) * (1 + i) for i, lang in enumerate(LANGS)}
    token = {lang: rng.normal(size=(3, 30, 5)) for lang in LANGS}
    return language_dataset(sentence, token, "eng_Latn", trace_ratio)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_divergence_plots_the_dataset(ds, tmp_path):
    fig = divergence_by_layer(ds)
    langs = [lang for lang in LANGS if lang != "eng_Latn"]  # not the reference
    for ax, var in zip(fig.axes, ("knn_kl", "softmax_kl"), strict=True):
        assert [line.get_label() for line in ax.lines] == langs
        for line, lang in zip(ax.lines, langs, strict=True):
            np.testing.assert_array_equal(line.get_xdata(), ds["layer"])
            expected = ds[var].sel(language=lang, level="sentence").values
            np.testing.assert_array_equal(line.get_ydata(), expected)
    fig.savefig(tmp_path / "f.png")


def test_script_groups(ds):
    groups = {lang: script_group(lang) for lang in LANGS}
    fig = script_groups_by_layer(ds, groups)
    line = fig.axes[1].lines[0]
    np.testing.assert_array_equal(
        line.get_ydata(), ds["id"].sel(language=line.get_label(), level="sentence")
    )
    assert [ax.get_title().split(" ")[0] for ax in fig.axes] == ["eng", "srp"]
    assert [len(ax.lines) for ax in fig.axes] == [2, 2]
    with pytest.raises(ValueError, match="group mapping"):
        script_groups_by_layer(ds, {"xyz": "x"})


def test_grammaticality_and_correlation(ds):
    rng = np.random.default_rng(1)
    good = rng.normal(size=(3, 25, 5))
    bad = good + rng.normal(scale=0.4, size=good.shape)
    boot = paired_bootstrap_diff(good, bad, trace_ratio, n_boot=20)
    fig = grammaticality_by_layer(boot)
    sides = fig.axes[0].lines
    np.testing.assert_array_equal(sides[0].get_ydata(), boot["id"].sel(side="good"))
    np.testing.assert_array_equal(sides[1].get_ydata(), boot["id"].sel(side="bad"))
    np.testing.assert_array_equal(fig.axes[1].lines[0].get_ydata(), boot["id_diff"])
    mean_id = mean_by_language(ds)
    scores = {lang: float(i) ** 1.5 for i, lang in enumerate(LANGS)}
    fig = score_correlation_scatter(mean_id, scores)
    title = fig.axes[0].get_title()
    assert "r = " in title and "ρ = " in title and "n = 4" in title and "p = " in title
