"""Intrinsic dimension: analytic cubes, invariances, duplicates, brute-force MLE; linearity."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from scipy.stats import ortho_group

from repgeom.metrics.estimators import IDOptions, estimate_sample
from repgeom.metrics.intrinsic import (
    mle,
    mle_from_distances,
    twonn,
    twonn_from_ratios,
    twonn_microscope,
)
from repgeom.metrics.linearity import linearity
from repgeom.metrics.neighbors import remove_duplicates


def embedded_cube(d: int, n: int = 4096, ambient: int = 256, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q = ortho_group.rvs(ambient, random_state=seed)[:d]
    return rng.uniform(size=(n, d)) @ q


@pytest.mark.parametrize(("d", "tol"), [(2, 0.2), (5, 0.5)])
def test_twonn_on_embedded_cubes(d, tol):
    x = embedded_cube(d)
    est = twonn(x)
    assert est.n_duplicates == 0 and abs(est.value - d) < tol


def test_twonn_invariances():
    x = embedded_cube(3, n=2000, seed=1)
    base = twonn(x).value
    q = ortho_group.rvs(256, random_state=2)
    for moved in (x + 4.0, x @ q, x * 1e3):
        assert twonn(moved).value == pytest.approx(base, rel=1e-6)


def test_duplicates_are_removed_and_counted():
    x = embedded_cube(2, n=1000, seed=3)
    with_dups = np.vstack([x, x[:37], x[:5]])
    est = twonn(with_dups)
    assert est.n_duplicates == 42 and est.value == pytest.approx(twonn(x).value, rel=1e-12)
    assert np.isfinite(mle(with_dups).value)


def test_twonn_fit_matches_independent_formula():
    rng = np.random.default_rng(4)
    mu = np.sort(1 + rng.pareto(3.0, size=500))
    n, m = 500, int(500 * 0.9)
    xs = np.log(mu[:m])
    ys = -np.log(1 - np.arange(1, m + 1) / n)  # empirical CDF i/N of the i-th smallest, 1-based
    slope = np.linalg.lstsq(xs[:, None], ys, rcond=None)[0][0]
    assert twonn_from_ratios(mu, 0.1) == pytest.approx(slope, rel=1e-12)
    assert twonn_from_ratios(mu, 0.0, "mle") == pytest.approx((n - 1) / np.log(mu).sum(), rel=1e-12)
    # censored likelihood: the discarded n − m ratios are known only to exceed mu[m − 1]
    logs = np.log(mu)
    censored = (m - 1) / (logs[:m].sum() + (n - m) * logs[m - 1])
    assert twonn_from_ratios(mu, 0.1, "mle") == pytest.approx(censored, rel=1e-12)
    # with no discard the largest ratio (F = 1) is left out of the least-squares fit
    ys_all = -np.log(1 - np.arange(1, n) / n)
    slope_all = np.linalg.lstsq(np.log(mu[:-1])[:, None], ys_all, rcond=None)[0][0]
    assert twonn_from_ratios(mu, 0.0) == pytest.approx(slope_all, rel=1e-12)


def test_mle_equals_brute_force_float64():
    x = embedded_cube(4, n=800, ambient=32, seed=5)
    k = 20
    value = mle(x, k=k).value
    dist = np.sort(cdist(x, x), axis=1)[:, 1 : k + 1]
    per_point_inverse = [np.mean([np.log(row[-1] / row[j]) for j in range(k - 1)]) for row in dist]
    brute = 1.0 / np.mean(per_point_inverse)
    assert value == pytest.approx(brute, rel=1e-6)
    assert mle_from_distances(dist) == pytest.approx(brute, rel=1e-12)
    assert abs(value - 4) < 0.6


def test_one_search_gives_all_estimators():
    x = embedded_cube(3, n=1500, seed=6)
    options = IDOptions(twonn_discard=0.1, twonn_fit="lsq", microscope_keep=0.2, mle_k=10)
    est = estimate_sample(x, options, ("twonn", "twonn_microscope", "mle", "n_duplicates"))
    assert est["twonn"] == pytest.approx(twonn(x).value, rel=1e-12)
    assert est["twonn_microscope"] == pytest.approx(twonn_microscope(x).value, rel=1e-12)
    assert est["mle"] == pytest.approx(mle(x, 10).value, rel=1e-12)
    assert est["n_duplicates"] == 0


def test_linearity_cases():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2000, 16))
    assert linearity(x, x @ rng.normal(size=(16, 16)) + 3) == pytest.approx(1.0, abs=1e-10)
    y = rng.normal(size=(2000, 16))
    assert linearity(x, y) == pytest.approx(16 / 2000, abs=0.01)
    with pytest.raises(ValueError, match="same rows"):
        linearity(x, y[:10])


def test_microscope_matches_its_documented_formula():
    rng = np.random.default_rng(9)
    mu = np.sort(np.r_[np.ones(3), 1 + rng.pareto(4.0, size=497)])
    from repgeom.metrics.intrinsic import twonn_microscope_from_ratios

    u = 3
    rest = mu[u:]
    f = np.arange(u + 1, len(mu) + 1) / len(mu)
    use = int(len(rest) * 0.2)
    xs, ys = np.log(rest[:use]), -np.log(1 - f[:use])
    assert twonn_microscope_from_ratios(mu) == pytest.approx((xs @ ys) / (xs @ xs), rel=1e-12)


def test_twonn_equals_exact_brute_force_float64():
    rng = np.random.default_rng(11)
    latent = rng.normal(size=(800, 6))
    x = (np.tanh(latent @ rng.normal(size=(6, 96))) + 0.01 * rng.normal(size=(800, 96))).astype(
        np.float32
    )
    d = cdist(x.astype(np.float64), x.astype(np.float64))
    np.fill_diagonal(d, np.inf)
    r = np.sort(d, axis=1)
    assert twonn(x).value == pytest.approx(twonn_from_ratios(r[:, 1] / r[:, 0]), rel=1e-12)


def test_remove_duplicates_equals_exact_unique():
    rng = np.random.default_rng(8)
    x = rng.integers(0, 3, size=(400, 3)).astype(np.float32)  # many exact repeats
    x[5], x[6] = [-0.0, 1, 2], [0.0, 1, 2]  # −0.0 equals 0.0
    kept, n_dup = remove_duplicates(x)
    _, first = np.unique(x.astype(np.float64) + 0.0, axis=0, return_index=True)
    np.testing.assert_array_equal(kept, x[np.sort(first)].astype(np.float64))
    assert n_dup == len(x) - len(first)
    distinct = rng.normal(size=(300, 16))
    assert remove_duplicates(distinct)[1] == 0


@pytest.mark.parametrize(("fit", "method"), [("lsq", "linear"), ("mle", "mle")])
def test_twonn_equals_scikit_dimension(fit, method):
    skdim = pytest.importorskip("skdim", reason="the test extra installs scikit-dimension 0.5")
    x = embedded_cube(6, n=1500, ambient=32, seed=9)
    ref = skdim.id.TwoNN(discard_fraction=0.1, method=method).fit(x).dimension_
    assert twonn(x, discard=0.1, fit=fit).value == pytest.approx(ref, rel=1e-9)
