"""Anisotropy family against float64 SVD, brute force and analytic cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group

from repgeom.metrics.anisotropy import anisotropy
from repgeom.metrics.family import (
    FamilyAccumulator,
    alpha_req,
    anisotropy_power,
    effective_rank,
    explained_variance,
    mean_cosine,
    rankme,
)
from repgeom.metrics.moments import Moments


def svd_spectrum(x: np.ndarray) -> np.ndarray:
    c = x.astype(np.float64) - x.astype(np.float64).mean(0)
    return np.linalg.svd(c, compute_uv=False) ** 2


def test_streaming_equals_svd_over_uneven_blocks():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(3001, 24)) * np.linspace(0.2, 5, 24) + 1e3).astype(np.float32)
    blocks = np.split(x, [1, 7, 700, 2999])
    acc = Moments.of(blocks, 24)
    ref = svd_spectrum(x)
    np.testing.assert_allclose(acc.eigvalsh()[:5], ref[:5], rtol=1e-8)
    assert acc.eigvalsh()[0] / acc.eigvalsh().sum() == pytest.approx(ref[0] / ref.sum(), rel=1e-8)
    np.testing.assert_allclose(
        explained_variance(acc.eigvalsh(), 30)[:24], ref / ref.sum(), rtol=1e-7, atol=1e-12
    )
    assert np.isnan(explained_variance(acc.eigvalsh(), 30)[24:]).all()


def test_analytic_cases_and_invariances():
    rng = np.random.default_rng(1)
    rank1 = np.outer(rng.normal(size=500), rng.normal(size=16)) + 3.0
    assert anisotropy(rank1) == pytest.approx(1.0, abs=1e-10)
    x = rng.normal(size=(200_000, 64))
    x[:, 0] *= 10
    assert anisotropy(x) == pytest.approx(100 / 163, rel=0.01)
    y = rng.normal(size=(2000, 32)) * np.linspace(1, 3, 32)
    q = ortho_group.rvs(32, random_state=2)
    base = anisotropy(y)
    assert anisotropy(y + 7.5) == pytest.approx(base, rel=1e-9)
    assert anisotropy(y * 13.0) == pytest.approx(base, rel=1e-9)
    assert anisotropy(y @ q) == pytest.approx(base, rel=1e-9)


def test_isotropic_gaussian_gives_marchenko_pastur_edge():
    n, d = 20_000, 100
    x = np.random.default_rng(3).normal(size=(n, d))
    expected = (1 + np.sqrt(d / n)) ** 2 / d
    assert anisotropy(x) == pytest.approx(expected, rel=0.10)
    assert abs(anisotropy(x) - 1 / d) > 0.1 / d


def test_power_iteration_exact_with_gap_and_honest_without():
    rng = np.random.default_rng(4)
    q = ortho_group.rvs(20, random_state=5)
    gap = q @ np.diag(np.r_[10.0, np.linspace(3, 1, 19)]) @ q.T
    res = anisotropy_power(gap, tol=1e-13, max_iter=5000)
    exact = 10.0 / np.trace(gap)
    assert res.converged and abs(res.value - exact) / exact < 1e-8
    flat = q @ np.diag(np.r_[1.0, 1.0 - 1e-7, np.full(18, 0.5)]) @ q.T
    res = anisotropy_power(flat, tol=1e-12, max_iter=200)
    assert not res.converged and res.iterations == 200 and res.residual > 1e-12
    del rng


def test_mean_cosine_brute_force_and_clouds():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(300, 12)) + 0.3
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    sims = u @ u.T
    brute = (sims.sum() - np.trace(sims)) / (300 * 299)
    assert mean_cosine(x) == pytest.approx(brute, rel=1e-10)
    cloud = rng.normal(size=(20_000, 64))
    assert abs(mean_cosine(cloud)) < 1e-3
    assert mean_cosine(cloud + 5.0) > 0.9
    with pytest.raises(ValueError, match="zero vector"):
        mean_cosine(np.vstack([cloud[:10], np.zeros((1, 64))]))


def test_streaming_mean_cosine_equals_one_pass():
    x = np.random.default_rng(7).normal(size=(1000, 8)) + 1
    acc = FamilyAccumulator.of(np.array_split(x, 7), 8)
    from repgeom.metrics.family import mean_cosine_from_sum

    assert mean_cosine_from_sum(acc.unit_sum, acc.moments.n) == pytest.approx(
        mean_cosine(x), rel=1e-12
    )


def test_effective_rank_extremes():
    q = ortho_group.rvs(16, random_state=8)
    assert effective_rank(svd_spectrum(np.vstack([q, -q]))) == pytest.approx(16, rel=1e-10)
    rank1 = np.outer(np.arange(50.0), np.ones(16))
    assert effective_rank(svd_spectrum(rank1)) == pytest.approx(1.0, abs=1e-6)


def test_nan_blocks_are_refused():
    with pytest.raises(FloatingPointError, match="NaN"):
        Moments(2).update(np.array([[1.0, np.nan]]))


def test_rankme_against_singular_values_and_analytic_cases():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(400, 30)) * np.geomspace(10, 0.01, 30) + 4.0
    sigma = np.linalg.svd(x - x.mean(0), compute_uv=False)  # singular values, directly
    p = sigma / sigma.sum()
    expected = np.exp(-np.sum(p * np.log(p)))
    assert rankme(svd_spectrum(x)) == pytest.approx(expected, rel=1e-10)
    # singular values, not eigenvalues: above the effective rank on an uneven spectrum
    assert rankme(svd_spectrum(x)) > effective_rank(svd_spectrum(x)) + 1
    assert rankme(np.full(12, 3.7)) == pytest.approx(12, rel=1e-12)
    # zeros (and rounding below zero) are ignored
    assert rankme(np.r_[np.full(5, 2.0), 0.0, -1e-17]) == pytest.approx(5, rel=1e-12)
    with pytest.raises(ValueError, match="no positive eigenvalue"):
        rankme(np.zeros(4))


def test_alpha_req_against_least_squares_and_power_law():
    ranks = np.arange(1, 201, dtype=np.float64)
    assert alpha_req(ranks**-2.0, 1, 200) == pytest.approx(2.0, rel=1e-12)
    assert alpha_req(5.0 * ranks**-0.8, 10, 150) == pytest.approx(0.8, rel=1e-12)
    rng = np.random.default_rng(10)
    w = np.sort(np.exp(rng.normal(size=100) * 2))[::-1]
    slope = np.polyfit(np.log(np.arange(5, 61)), np.log(w[4:60]), 1)[0]
    assert alpha_req(w, 5, 60) == pytest.approx(-slope, rel=1e-10)
    # last is capped at the positive eigenvalues
    padded = np.r_[w[:40], 0.0, 0.0, -1e-18]
    slope = np.polyfit(np.log(np.arange(5, 41)), np.log(w[4:40]), 1)[0]
    assert alpha_req(padded, 5, 1000) == pytest.approx(-slope, rel=1e-10)
    with pytest.raises(ValueError, match="ranks 40…100"):
        alpha_req(padded, 40, 100)
    with pytest.raises(ValueError, match="at least 2"):
        alpha_req(w, 7, 6)
    with pytest.raises(ValueError, match="descending"):
        alpha_req(w[::-1], 1, 10)
