"""The languages study of one checkpoint: stores → datasets, estimators by name, scores, figures."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import cdist

from repgeom.languages.compute import language_dataset, paired_bootstrap_diff
from repgeom.languages.datasets import (
    LanguagesOptions,
    check_aligned,
    checkpoint_datasets,
    correlation_row,
    grammaticality_dataset,
    group_view,
    latex_table,
    pairs_view,
    scored_mean_id,
    study_dataset,
)
from repgeom.languages.estimates import ID_ESTIMATORS, IDFunction
from repgeom.languages.plan import figure_names
from repgeom.metrics import neighbors
from repgeom.metrics.gride import gride_function
from repgeom.sampling import seeded_subsample
from repgeom.workflow.config import options


class FakeStore:
    """The part of ActivationStore the study reads, from arrays (layer, row, d)."""

    def __init__(self, sentences: np.ndarray, tokens: np.ndarray) -> None:
        self.sentences, self.tokens = sentences, tokens
        self.layers = list(range(sentences.shape[0]))

    @property
    def n_sentences(self) -> int:
        return self.sentences.shape[1]

    @property
    def n_tokens(self) -> int:
        return self.tokens.shape[1]

    def read_sentences(self, layer: int) -> np.ndarray:
        return self.sentences[layer]

    def read(self, layer: int) -> np.ndarray:
        return self.tokens[layer]


def participation_ratio(x: np.ndarray) -> float:
    xc = x - x.mean(axis=0)
    s2 = np.linalg.svd(xc.astype(np.float64), compute_uv=False) ** 2
    return float(s2.sum() ** 2 / (s2**2).sum())


def group(name, base, members, ref, origin="synthetic_scripts", panels=None):
    names = [f"{base}-{m}" for m in members]
    return {
        "name": name,
        "base": base,
        "corpora": names,
        "members": list(members),
        "reference": f"{base}-{ref}",
        "origin": origin,
        "synthetic": True,
        "description": "",
        "script_panels": panels if panels is not None else dict.fromkeys(names, name),
    }


N_LAYER, N_SENT, D = 3, 30, 5


@pytest.fixture(scope="module")
def stores():
    rng = np.random.default_rng(0)
    out = {}
    for i, c in enumerate(["s-Latn", "s-Cyrl", "s-Grek", "p-good", "p-bad"]):
        sent = rng.normal(size=(N_LAYER, N_SENT, D)).astype(np.float32) * (1 + 0.3 * i)
        tok = rng.normal(size=(N_LAYER, 40 + 5 * i, D)).astype(np.float32)
        out[c] = FakeStore(sent, tok)
    return out


GROUPS = [
    group("s", "s", ["Latn", "Cyrl", "Grek"], "Latn"),
    group("p", "p", ["good", "bad"], "good", "synthetic_pairs", {}),
]


def test_study_dataset_matches_language_dataset_on_all_layers(stores):
    ds = study_dataset(stores, GROUPS, participation_ratio, knn_k=2, token_knn_kl=20, seed=3)
    assert ds["id"].dims == ("language", "layer", "level")
    assert list(ds["language"].values) == ["s-Latn", "s-Cyrl", "s-Grek", "p-good", "p-bad"]
    assert list(ds["group"].values) == ["s"] * 3 + ["p"] * 2
    assert list(ds["reference"].values) == ["s-Latn"] * 3 + ["p-good"] * 2
    for g in GROUPS:
        ref = language_dataset(
            {c: stores[c].sentences for c in g["corpora"]},
            {c: stores[c].tokens for c in g["corpora"]},
            g["reference"],
            participation_ratio,
            knn_k=2,
            token_knn_kl=20,
            seed=3,
        )
        sub = ds.sel(language=g["corpora"])
        for var in ("id", "anisotropy", "knn_kl", "softmax_kl"):
            np.testing.assert_allclose(sub[var].values, ref[var].values, rtol=1e-12)
        assert (sub["n_points"].values == ref["n_points"].values).all()
    # the reference's own divergences are 0, other members' are not
    assert (ds["knn_kl"].sel(language="s-Latn", level="sentence") == 0).all()
    assert (ds["knn_kl"].sel(language="s-Cyrl", level="sentence") != 0).all()
    for var in ("id", "anisotropy", "knn_kl", "softmax_kl"):
        assert ds[var].attrs["long_name"] and "units" in ds[var].attrs


def test_wrong_length_stops_naming_the_corpus_and_both_counts(stores):
    short = dict(stores)
    s = stores["s-Grek"]
    short["s-Grek"] = FakeStore(s.sentences[:, :-3], s.tokens)
    with pytest.raises(ValueError, match=r"'s-Grek' has 27 sentences but 's-Latn' has 30"):
        study_dataset(short, GROUPS, participation_ratio)
    with pytest.raises(ValueError, match="layers"):
        check_aligned({"a": s, "b": FakeStore(s.sentences[:2], s.tokens[:2])}, ["a", "b"])
    with pytest.raises(ValueError, match="no activation store"):
        check_aligned(stores, ["s-Latn", "nope"])


def test_group_view_renames_members_and_reference(stores):
    ds = study_dataset(stores, GROUPS, participation_ratio)
    v = group_view(ds, "s")
    assert list(v["language"].values) == ["Latn", "Cyrl", "Grek"]
    assert v.attrs["reference"] == "Latn" and "from Latn" in v["knn_kl"].attrs["long_name"]
    assert v["n_points"].dtype.kind == "i"
    np.testing.assert_array_equal(v["id"].values, ds["id"].sel(language=GROUPS[0]["corpora"]))
    assert "group's reference" in ds["knn_kl"].attrs["long_name"]  # the source is untouched
    with pytest.raises(ValueError, match="not in the dataset"):
        group_view(ds, "zz")


def test_grammaticality_dataset_matches_paired_bootstrap(stores):
    pairs = [GROUPS[1]]
    ds = grammaticality_dataset(stores, pairs, participation_ratio, n_boot=15, seed=2, alpha=0.1)
    ref = paired_bootstrap_diff(
        stores["p-good"].sentences,
        stores["p-bad"].sentences,
        participation_ratio,
        n_boot=15,
        seed=2,
        alpha=0.1,
    )
    sub = pairs_view(ds, "p")
    assert sub.attrs["n_pairs"] == N_SENT
    for var in ("id", "id_low", "id_high", "id_diff", "id_diff_low", "id_diff_high", "id_boot"):
        np.testing.assert_allclose(sub[var].values, ref[var].values, rtol=1e-12)


def test_checkpoint_datasets_take_the_options(stores):
    """The job's two datasets from the typed options: the study dataset with GRIDE from the ID's
    neighbour search, the bootstrap with the ID alone, both as built from loose arguments."""
    o = options(
        LanguagesOptions,
        "languages",
        dict(id_estimator="skdim_twonn", id_sample=20, gride_scales=2, gride_scale=1, seed=3),
    )
    assert o.id_function(gride=True) == IDFunction("twonn", 20, 1, 3, 2)
    assert o.id_function() == IDFunction("twonn", 20, 1, 3)
    assert o.attrs()["id_estimator"] == "twonn"  # the alias resolved
    ds, boot = checkpoint_datasets(stores, GROUPS, [GROUPS[1]], o, {"model": "m"})
    ref = study_dataset(stores, GROUPS, o.id_function(gride=True), o.knn_k, 0, 3, {"model": "m"})
    assert ds.identical(ref) and "gride" in ds
    ref_boot = grammaticality_dataset(stores, [GROUPS[1]], o.id_function(), o.n_boot, 3, o.alpha)
    np.testing.assert_array_equal(boot["id_boot"].values, ref_boot["id_boot"].values)
    assert boot.attrs["model"] == "m"
    assert checkpoint_datasets(stores, GROUPS[:1], [], o, {})[1] is None


def skdim_twonn_reference(x: np.ndarray, discard: float = 0.1) -> float:
    """scikit-dimension's TwoNN written out on a brute-force distance matrix (float64)."""
    x = np.unique(np.asarray(x, dtype=np.float64), axis=0)
    dist = cdist(x, x)
    np.fill_diagonal(dist, np.inf)
    r = np.sort(dist, axis=1)[:, :2]
    mu = np.sort(r[:, 1] / r[:, 0])
    n = len(mu)
    m = int(n * (1 - discard))
    xs, ys = np.log(mu[:m]), -np.log(1 - np.arange(1, m + 1) / n)
    return float(xs @ ys / (xs @ xs))


def test_id_function_by_name_against_references():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 4)) @ rng.normal(size=(4, 12))  # 4-dimensional data in R^12
    x = np.concatenate([x, x[:10]])  # exact duplicates are removed before estimating
    value = IDFunction("skdim_twonn", sample=1000)(x).values
    assert value.shape == (1,)
    np.testing.assert_allclose(value[0], skdim_twonn_reference(x), rtol=1e-9)
    assert 3 < value[0] < 5
    rows = [seeded_subsample(len(x), 100, 7, r) for r in range(3)]
    values = IDFunction("skdim_twonn", sample=100, repeats=3, seed=7)(x).values
    expected = [skdim_twonn_reference(x[r]) for r in rows]
    np.testing.assert_allclose(values, expected, rtol=1e-9)
    assert set(ID_ESTIMATORS) == {"twonn", "twonn_microscope"}
    np.testing.assert_array_equal(IDFunction("twonn", sample=1000)(x).values, value)  # the alias
    assert np.isfinite(IDFunction("twonn_microscope", 1000)(x).values).all()
    with pytest.raises(ValueError, match="unknown ID estimator"):
        IDFunction("pca", 100)
    with pytest.raises(ValueError, match="id_sample"):
        IDFunction("twonn", 2)


def test_scores_are_matched_by_member_or_corpus_name(stores):
    ds = study_dataset(stores, GROUPS, participation_ratio)
    scores = {"Latn": 1.0, "s-Cyrl": 3.0, "Grek": 2.0, "good": 9.0, "other": 4.0}
    mean_id, matched = scored_mean_id(ds, ["s"], scores)
    assert sorted(mean_id) == ["Grek", "Latn", "s-Cyrl"]
    expected = float(ds["id"].sel(language="s-Cyrl", level="sentence").mean())
    assert mean_id["s-Cyrl"] == pytest.approx(expected)
    row = correlation_row(ds, ["s"], scores, model="m", step="step1")
    x = [mean_id[k] for k in ("Latn", "s-Cyrl", "Grek")]
    y = [1.0, 3.0, 2.0]
    assert row["model"] == "m" and row["n"] == 3
    assert row["pearson_r"] == pytest.approx(stats.pearsonr(x, y).statistic)
    assert row["spearman_p"] == pytest.approx(stats.spearmanr(x, y).pvalue)
    tex = latex_table([row], "a caption_with underscore")
    assert r"\begin{tabular}{llrrrrr}" in tex and r"Spearman $\rho$" in tex
    assert r"caption\_with" in tex and "step1" in tex
    with pytest.raises(ValueError, match="need ≥ 3"):
        correlation_row(ds, ["s"], {"Latn": 1.0, "Grek": 2.0})


def test_checkpoint_figures_are_the_planned_ones(stores):
    from repgeom.languages.plan import dataset_groups
    from repgeom.languages.plots import checkpoint_figures

    groups, pairs = GROUPS[:1], GROUPS[1:]
    fn = gride_function(3, sample=30)
    ds = study_dataset(stores, GROUPS, participation_ratio, gride_fn=fn)  # pairs are a group too
    ds.attrs["gride_scale"] = 2
    boot = grammaticality_dataset(stores, pairs, participation_ratio, n_boot=5)
    figures = checkpoint_figures(ds, boot, dataset_groups(groups, pairs), pairs, "m · step1")
    planned = figure_names(groups, pairs)
    assert set(figures) == {s for stems in planned.values() for s in stems}
    assert planned["scripts"] == ["s_scripts"] and planned["grammaticality"] == ["p_grammaticality"]
    for make in figures.values():
        fig = make()
        assert isinstance(fig, plt.Figure) and "SYNTHETIC" in fig._suptitle.get_text()
        plt.close(fig)
    fig = figures["p_grammaticality"]()
    assert "n = 30 pairs" in fig.axes[1].get_title()
    plt.close(fig)
    # GRIDE over scales: one panel per layer (all 3 here) and level, one line per member
    fig = figures["s_id_by_scale"]()
    assert len(fig.axes) == 2 * N_LAYER
    for ax in fig.axes[:N_LAYER]:
        layer = int(ax.get_title().split()[1])
        assert [line.get_label() for line in ax.lines] == ["Latn", "Cyrl", "Grek"]
        for line, corpus in zip(ax.lines, ["s-Latn", "s-Cyrl", "s-Grek"], strict=True):
            want = ds["gride"].sel(language=corpus, layer=layer, level="sentence").values
            np.testing.assert_array_equal(line.get_ydata(), want)
            np.testing.assert_array_equal(line.get_xdata(), [1, 2, 4])
    plt.close(fig)
    # the ID figure draws GRIDE at gride_scale dashed next to the ID
    fig = figures["s_id_anisotropy"]()
    dashed = [line for line in fig.axes[0].lines if line.get_linestyle() == "--"]
    want = ds["gride"].sel(language="s-Grek", level="sentence", scale=2).values
    np.testing.assert_array_equal(dashed[2].get_ydata(), want)
    plt.close(fig)


def test_one_neighbour_search_per_subsample_gives_the_id_and_gride(stores, monkeypatch):
    """An IDFunction with GRIDE scales: the ID on every subsample and GRIDE on the first from one search per
    subsample, equal to the ID and GRIDE functions run apart (two searches on the first)."""
    calls: list[int] = []
    search = neighbors.knn

    def counted(query, *args, **kwargs):
        calls.append(len(query))
        return search(query, *args, **kwargs)

    both = IDFunction("skdim_twonn", sample=25, repeats=2, seed=4, gride_scales=3)
    monkeypatch.setattr(neighbors, "knn", counted)
    ds = study_dataset(stores, GROUPS, both, seed=4)
    # 5 corpora × 3 layers × 2 levels (30 sentences, 40–60 tokens: all subsampled) × 2 repeats
    assert len(calls) == 5 * N_LAYER * 2 * 2 and set(calls) == {25}
    monkeypatch.setattr(neighbors, "knn", search)
    apart = study_dataset(
        stores,
        GROUPS,
        IDFunction("skdim_twonn", 25, 2, 4),
        seed=4,
        gride_fn=gride_function(3, 25, 4),
    )
    for var in ("id", "id_std", "gride", "gride_error"):
        np.testing.assert_array_equal(ds[var].values, apart[var].values)
    assert ds["gride"].dims == ("language", "layer", "level", "scale")
    with pytest.raises(ValueError, match="GRIDE given twice"):
        study_dataset(stores, GROUPS, both, gride_fn=gride_function(3, 25))
