"""Figures of the per-language study are built from datasets and return Figures."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from repgeom.languages.corpora import script_group, synthetic_code
from repgeom.languages.study import (
    language_dataset,
    mean_by_language,
    paired_bootstrap_diff,
)
from repgeom.plots.languages import (
    divergence_by_layer,
    grammaticality_by_layer,
    id_anisotropy_by_layer,
    language_layer_heatmaps,
    score_correlation_scatter,
    script_groups_by_layer,
)


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


def test_by_layer_and_heatmaps(ds, tmp_path):
    for fig in (
        id_anisotropy_by_layer(ds),
        id_anisotropy_by_layer(ds, level="token"),
        language_layer_heatmaps(ds),
        divergence_by_layer(ds),
    ):
        assert isinstance(fig, plt.Figure)
        fig.savefig(tmp_path / "f.png")
    assert len(language_layer_heatmaps(ds).axes) == 4  # two panels and their colour bars


def test_script_groups(ds):
    groups = {lang: script_group(lang) for lang in LANGS}
    fig = script_groups_by_layer(ds, groups)
    assert isinstance(fig, plt.Figure)
    assert [ax.get_title().split(" ")[0] for ax in fig.axes] == ["eng", "srp"]
    assert [len(ax.lines) for ax in fig.axes] == [2, 2]
    with pytest.raises(ValueError, match="group mapping"):
        script_groups_by_layer(ds, {"xyz": "x"})


def test_grammaticality_and_correlation(ds):
    rng = np.random.default_rng(1)
    good = rng.normal(size=(3, 25, 5))
    bad = good + rng.normal(scale=0.4, size=good.shape)
    boot = paired_bootstrap_diff(good, bad, trace_ratio, n_boot=20)
    assert isinstance(grammaticality_by_layer(boot), plt.Figure)
    mean_id = mean_by_language(ds)
    scores = {lang: float(i) ** 1.5 for i, lang in enumerate(LANGS)}
    fig = score_correlation_scatter(mean_id, scores)
    title = fig.axes[0].get_title()
    assert "r = " in title and "ρ = " in title and "n = 4" in title and "p = " in title
