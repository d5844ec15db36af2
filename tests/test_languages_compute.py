"""Per-language datasets, the paired bootstrap and the score correlation against references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from repgeom.languages.compute import (
    language_dataset,
    mean_by_language,
    paired_bootstrap_diff,
    score_correlation,
)
from repgeom.languages.divergence import knn_kl
from repgeom.metrics.gride import gride, gride_function
from repgeom.sampling import seeded_subsample

LANGS = ["eng_Latn", "fra_Latn", "rus_Cyrl"]


def participation_ratio(x: np.ndarray) -> float:
    """A simple ID stand-in: (Σλ)² / Σλ² of the centred covariance."""
    xc = x - x.mean(axis=0)
    s2 = np.linalg.svd(xc.astype(np.float64), compute_uv=False) ** 2
    return float(s2.sum() ** 2 / (s2**2).sum())


def split_ratio(x: np.ndarray) -> np.ndarray:
    """An ID stand-in with repeats: the participation ratio of two halves."""
    h = x.shape[0] // 2
    return np.array([participation_ratio(x[:h]), participation_ratio(x[h:])])


def svd_anisotropy(x: np.ndarray) -> float:
    s2 = np.linalg.svd(x - x.mean(axis=0), compute_uv=False) ** 2
    return float(s2[0] / s2.sum())


def direct_softmax_kl(x, y):
    p = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    q = np.exp(y) / np.exp(y).sum(axis=1, keepdims=True)
    return float(np.mean(np.sum(p * np.log(p / q), axis=1)))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n_layer, n_sent, d = 3, 40, 6
    sentence = {
        lang: (rng.normal(size=(n_layer, n_sent, d)) * (1 + i)).astype(np.float32)
        for i, lang in enumerate(LANGS)
    }
    token = {
        lang: rng.normal(size=(n_layer, 50 + 10 * i, d)).astype(np.float32)
        for i, lang in enumerate(LANGS)
    }
    return sentence, token


def test_language_dataset_values(data):
    sentence, token = data
    ds = language_dataset(sentence, token, "eng_Latn", participation_ratio, layers=[0, 4, 8])
    assert dict(ds.sizes) == {"language": 3, "layer": 3, "level": 2}
    assert list(ds["level"].values) == ["sentence", "token"]
    assert list(ds["layer"].values) == [0, 4, 8]
    for var in ds.data_vars:
        assert ds[var].attrs["long_name"] and ds[var].attrs["units"]
    ref = sentence["eng_Latn"].astype(np.float64)
    for gi, lang in enumerate(LANGS):
        for li, layer in enumerate([0, 4, 8]):
            x = sentence[lang][li].astype(np.float64)
            t = token[lang][li].astype(np.float64)
            at = {"language": lang, "layer": layer}
            s, k = ds.sel(**at, level="sentence"), ds.sel(**at, level="token")
            assert float(s["id"]) == pytest.approx(participation_ratio(x), rel=1e-5)
            assert float(k["id"]) == pytest.approx(participation_ratio(t), rel=1e-5)
            assert float(s["anisotropy"]) == pytest.approx(svd_anisotropy(x), rel=1e-5)
            assert float(k["anisotropy"]) == pytest.approx(svd_anisotropy(t), rel=1e-5)
            assert float(s["softmax_kl"]) == pytest.approx(direct_softmax_kl(x, ref[li]), rel=1e-5)
            assert float(s["knn_kl"]) == pytest.approx(knn_kl(x, ref[li]), rel=1e-5)
            assert np.isnan(k["softmax_kl"]) and np.isnan(k["knn_kl"])
            assert np.isnan(s["id_std"])
        assert int(ds["n_points"].sel(language=lang, level="token")) == 50 + 10 * gi
    eng = ds.sel(language="eng_Latn", level="sentence")
    assert (eng["knn_kl"] == 0).all() and (eng["softmax_kl"] == 0).all()
    assert ds.attrs["reference"] == "eng_Latn"


def test_language_dataset_repeats_and_token_callable(data):
    sentence, token = data
    calls = []

    def read(lang, layer):
        calls.append((lang, layer))
        return token[lang][layer]

    a = language_dataset(sentence, token, "fra_Latn", split_ratio, token_knn_kl=30, seed=1)
    b = language_dataset(sentence, read, "fra_Latn", split_ratio, token_knn_kl=30, seed=1)
    for var in a.data_vars:
        np.testing.assert_array_equal(a[var].values, b[var].values)
    assert ("rus_Cyrl", 2) in calls
    x = sentence["rus_Cyrl"][1].astype(np.float64)
    reps = split_ratio(x)
    sel = a.sel(language="rus_Cyrl", layer=1, level="sentence")
    assert float(sel["id"]) == pytest.approx(reps.mean(), rel=1e-5)
    assert float(sel["id_std"]) == pytest.approx(reps.std(ddof=1), rel=1e-4)
    tok_kl = a["knn_kl"].sel(level="token")
    assert np.isfinite(tok_kl).all()
    assert (tok_kl.sel(language="fra_Latn") == 0).all()


def test_language_dataset_without_tokens(data):
    sentence, _ = data
    ds = language_dataset(sentence, None, "eng_Latn", participation_ratio)
    assert np.isnan(ds["id"].sel(level="token")).all()
    assert (ds["n_points"].sel(level="token") == 0).all()


def test_language_dataset_alignment_errors(data):
    sentence, token = data
    bad = dict(sentence)
    bad["fra_Latn"] = bad["fra_Latn"][:, :39]
    with pytest.raises(ValueError, match=r"fra_Latn.*39 sentences.*eng_Latn.*40"):
        language_dataset(bad, token, "eng_Latn", participation_ratio)
    with pytest.raises(ValueError, match="reference"):
        language_dataset(sentence, token, "deu_Latn", participation_ratio)
    nan = dict(sentence)
    nan["rus_Cyrl"] = nan["rus_Cyrl"].copy()
    nan["rus_Cyrl"][0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="rus_Cyrl.*NaN"):
        language_dataset(nan, token, "eng_Latn", participation_ratio)


def test_mean_by_language(data):
    sentence, _ = data
    ds = language_dataset(sentence, None, "eng_Latn", participation_ratio)
    means = mean_by_language(ds)
    for lang in LANGS:
        ref = np.mean([participation_ratio(sentence[lang][i].astype(np.float64)) for i in range(3)])
        assert means[lang] == pytest.approx(ref, rel=1e-5)


def reference_bootstrap(good, bad, fn, n_boot, seed, alpha, distinct):
    """The documented protocol, written out with loops."""
    n = good.shape[1]
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    lo, hi, diff = [], [], []
    for li in range(good.shape[0]):
        d = []
        for b in range(n_boot):
            sel = sorted(set(idx[b].tolist())) if distinct else idx[b]
            d.append(fn(good[li][sel]) - fn(bad[li][sel]))
        lo.append(np.percentile(d, 100 * alpha / 2))
        hi.append(np.percentile(d, 100 * (1 - alpha / 2)))
        diff.append(fn(good[li]) - fn(bad[li]))
    return np.array(diff), np.array(lo), np.array(hi)


@pytest.mark.parametrize("distinct", [True, False])
def test_paired_bootstrap_matches_reference(distinct):
    rng = np.random.default_rng(5)
    good = rng.normal(size=(2, 30, 5))
    bad = good + rng.normal(scale=0.5, size=good.shape) * np.array([1, 1, 1, 2, 2])
    ds = paired_bootstrap_diff(
        good, bad, participation_ratio, n_boot=50, seed=7, alpha=0.1, distinct=distinct
    )
    diff, lo, hi = reference_bootstrap(good, bad, participation_ratio, 50, 7, 0.1, distinct)
    np.testing.assert_allclose(ds["id_diff"].values, diff, rtol=1e-10)
    np.testing.assert_allclose(ds["id_diff_low"].values, lo, rtol=1e-10)
    np.testing.assert_allclose(ds["id_diff_high"].values, hi, rtol=1e-10)
    assert (ds["id_low"] <= ds["id_high"]).all()
    assert ds["id_boot"].shape == (2, 50, 2)
    for var in ds.data_vars:
        assert ds[var].attrs["long_name"] and ds[var].attrs["units"]


def test_paired_bootstrap_agrees_with_scipy():
    # ID stand-in = mean of the first coordinate: the difference is a paired mean difference,
    # so the textbook paired bootstrap (distinct=False) is scipy's paired percentile bootstrap.
    rng = np.random.default_rng(11)
    n = 80
    good = rng.normal(size=(1, n, 3))
    bad = good + rng.normal(0.3, 1.0, size=good.shape)

    def first_mean(x):
        return float(x[:, 0].mean())

    # Monte Carlo error of each 2.5 % / 97.5 % endpoint ≈ 0.05 sd at 4000 replicates; allow 0.25 sd
    ds = paired_bootstrap_diff(good, bad, first_mean, n_boot=4000, seed=0, distinct=False)
    ref = stats.bootstrap(
        (good[0, :, 0], bad[0, :, 0]),
        lambda a, b, axis=-1: a.mean(axis=axis) - b.mean(axis=axis),
        paired=True,
        n_resamples=4000,
        method="percentile",
        rng=np.random.default_rng(1),
    )
    sd = (good[0, :, 0] - bad[0, :, 0]).std(ddof=1) / np.sqrt(n)
    assert float(ds["id_diff_low"][0]) == pytest.approx(ref.confidence_interval.low, abs=0.25 * sd)
    assert float(ds["id_diff_high"][0]) == pytest.approx(
        ref.confidence_interval.high, abs=0.25 * sd
    )
    assert float(ds["id_diff"][0]) == pytest.approx(good[0, :, 0].mean() - bad[0, :, 0].mean())


def test_paired_bootstrap_bad_input():
    x = np.zeros((2, 5, 3))
    with pytest.raises(ValueError, match="equal shape"):
        paired_bootstrap_diff(x, x[:, :4], participation_ratio)
    with pytest.raises(ValueError, match="alpha"):
        paired_bootstrap_diff(x, x, participation_ratio, alpha=1.5)


def test_score_correlation_against_references():
    rng = np.random.default_rng(4)
    langs = [f"l{i}" for i in range(12)]
    ids = dict(zip(langs, rng.normal(size=12), strict=True))
    scores = {lang: 0.6 * v + rng.normal(scale=0.5) for lang, v in ids.items()}
    scores["extra"] = 1.0  # not in ids: ignored
    res = score_correlation(ids, scores)
    a = np.array([ids[lang] for lang in langs])
    b = np.array([scores[lang] for lang in langs])
    n = 12

    def t_pvalue(r):
        t = r * np.sqrt((n - 2) / (1 - r**2))
        return 2 * stats.t.sf(abs(t), n - 2)

    r = np.corrcoef(a, b)[0, 1]
    rho = np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1]
    assert res["n"] == n and res["languages"] == langs
    assert res["pearson_r"] == pytest.approx(r, rel=1e-10)
    assert res["spearman_rho"] == pytest.approx(rho, rel=1e-10)
    assert res["pearson_p"] == pytest.approx(t_pvalue(r), rel=1e-6)
    assert res["spearman_p"] == pytest.approx(t_pvalue(rho), rel=1e-6)


def test_score_correlation_errors():
    with pytest.raises(ValueError, match="need ≥ 3"):
        score_correlation({"a": 1.0, "b": 2.0}, {"a": 1.0, "b": 3.0})
    with pytest.raises(ValueError, match="constant"):
        score_correlation({"a": 1.0, "b": 1.0, "c": 1.0}, {"a": 1.0, "b": 2.0, "c": 3.0})


def test_language_dataset_gride_over_scales(data):
    sentence, token = data
    fn = gride_function(4, sample=35, seed=5)
    ds = language_dataset(sentence, token, "eng_Latn", participation_ratio, gride_fn=fn)
    assert ds["gride"].dims == ("language", "layer", "level", "scale")
    assert list(ds["scale"].values) == [1, 2, 4, 8] and list(ds["n2"].values) == [2, 4, 8, 16]
    for lang in LANGS:
        for li in range(3):
            for level, x in (("sentence", sentence[lang][li]), ("token", token[lang][li])):
                # GRIDE of that seeded subsample (gride itself is checked against a brute-force
                # likelihood and DADApy in tests/test_gride.py)
                rows = seeded_subsample(x.shape[0], 35, 5)
                ref = gride(x[rows].astype(np.float64), n_scales=4)
                at = ds.sel(language=lang, layer=li, level=level)
                np.testing.assert_allclose(at["gride"].values, ref.id, rtol=1e-9)
                np.testing.assert_allclose(at["gride_error"].values, ref.id_error, rtol=1e-9)
    # without tokens the token level is NaN; without gride_fn there is no scale dimension
    no_tokens = language_dataset(sentence, None, "eng_Latn", participation_ratio, gride_fn=fn)
    assert np.isnan(no_tokens["gride"].sel(level="token")).all()
    assert np.isfinite(no_tokens["gride"].sel(level="sentence")).all()
    assert "scale" not in language_dataset(sentence, None, "eng_Latn", participation_ratio).dims
