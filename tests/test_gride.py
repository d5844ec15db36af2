"""GRIDE: embedded manifolds, the exact ratio law, a brute-force likelihood, DADApy's values;
the TwoNN bootstrap error against the sampling spread it estimates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.spatial.distance import cdist
from scipy.stats import beta

from repgeom.metrics.gride import (
    gride,
    gride_from_distances,
    gride_from_ratios,
    gride_function,
    gride_scales,
)
from repgeom.metrics.intrinsic import twonn_bootstrap_error, twonn_from_ratios
from repgeom.sampling import seeded_subsample

FIXTURE = Path(__file__).parent / "data" / "gride_dadapy.npz"
AMBIENT = 768


def orthonormal_rows(m: int, seed: int) -> np.ndarray:
    """m orthonormal rows in 768 dims (QR of a Gaussian matrix)."""
    return np.linalg.qr(np.random.default_rng(seed).normal(size=(AMBIENT, m)))[0].T


EMBED = orthonormal_rows(21, seed=0)  # maps ≤ 21 dims isometrically into 768


def manifold(shape: str, d: int, n: int, seed: int) -> np.ndarray:
    """n points uniform in the unit d-cube or on the unit d-sphere, embedded in 768 dims."""
    rng = np.random.default_rng(seed)
    if shape == "cube":
        x = rng.uniform(size=(n, d))
    else:
        g = rng.normal(size=(n, d + 1))
        x = g / np.linalg.norm(g, axis=1, keepdims=True)
    return x @ EMBED[: x.shape[1]]


def model_ratios(d: float, n1: int, n2: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """μ = r_{n2}/r_{n1} of a homogeneous Poisson process in d dims: μ^(−d) ~ Beta(n1, n2 − n1)."""
    return rng.beta(n1, n2 - n1, size=n) ** (-1.0 / d)


def log_likelihood(d: float, mu: np.ndarray, n1: int, n2: int) -> float:
    """Σ log f(μ | d), from the Beta law of μ^(−d) and the Jacobian d·μ^(−d−1)."""
    return float(np.sum(beta.logpdf(mu ** (-d), n1, n2 - n1) + np.log(d) - (d + 1) * np.log(mu)))


def kept_by_dadapy(mu: np.ndarray) -> np.ndarray:
    """The ratios the estimate uses: below q50 + 20·(q95 − q50), as DADApy 0.3's filter."""
    q95, q50 = np.percentile(mu, [95, 50])
    return mu[mu < q50 + 20 * (q95 - q50)]


@pytest.mark.parametrize(
    ("shape", "d", "n1_max"), [("cube", 2, 4), ("sphere", 2, 16), ("sphere", 5, 4)]
)
def test_recovers_d_within_its_error_where_the_model_holds(shape, d, n1_max):
    # with 3000 points these neighbourhoods up to n1_max are nearly flat and (the cube's) few
    # reach a face: every estimate there lies within 3 of its errors of d
    est = gride(manifold(shape, d, 3000, seed=d), n_scales=5)
    assert est.n_points == 3000 and est.n_duplicates == 0
    use = est.n1 <= n1_max
    assert np.all(np.abs(est.id[use] - d) < 3 * est.id_error[use]), (est.id, est.id_error)
    assert np.all(est.id_error < 0.06 * d) and np.all(np.diff(est.id_error) < 0)
    assert np.all(np.diff(est.scale) > 0)


@pytest.mark.parametrize(
    ("shape", "d"), [("cube", 10), ("sphere", 10), ("cube", 20), ("sphere", 20)]
)
def test_high_dimensions_bias_is_downward_and_bounded(shape, d):
    # with 2000 points a 10- or 20-dimensional neighbourhood reaches the cube's faces and bends
    # with the sphere, so every estimator falls short of d (the reason the ID-vs-scale curve is
    # looked at); GRIDE's shortfall stays within 25 % at the smallest scale and grows with scale
    est = gride(manifold(shape, d, 2000, seed=d + 1), n_scales=4)
    assert 0.75 * d < est.id[0] < d
    assert est.id[-1] < est.id[0]


@pytest.mark.parametrize("d", [2, 5, 10, 20])
def test_exact_ratio_law_recovers_d_and_the_error_is_calibrated(d):
    # ratios drawn from the law the likelihood assumes: z = (d̂ − d)/error is ~ N(0, 1)
    rng = np.random.default_rng(d)
    for n1 in (1, 4, 32):
        z = []
        for _ in range(100):
            d_hat, err = gride_from_ratios(model_ratios(d, n1, 2 * n1, 1000, rng), n1)
            z.append((d_hat - d) / err)
        assert abs(np.mean(z)) < 0.4 and 0.8 < np.std(z) < 1.2, (n1, np.mean(z), np.std(z))


@pytest.mark.parametrize(("n_copies", "n_scales"), [(0, 5), (6, 4)])
def test_equals_brute_force_float64_likelihood(n_copies, n_scales):
    rng = np.random.default_rng(7)
    base = rng.normal(size=(300, 3))
    x = np.vstack([base, base[:n_copies] + 1e-5 * rng.normal(size=(n_copies, 3))]) @ EMBED[:3]
    est = gride(x, n_scales=n_scales)
    ids, errors, scales = est.id, est.id_error, est.scale
    dist = np.sort(cdist(x, x), axis=1)[:, 1:]  # brute force: every distance, sorted
    for s, (n1, n2) in enumerate(zip(*gride_scales(n_scales), strict=True)):
        mu = dist[:, n2 - 1] / dist[:, n1 - 1]
        kept = kept_by_dadapy(mu)
        if n_copies and n1 == 1:
            assert len(kept) < len(mu)  # the near-copies' r2/r1 are left out of the estimate
        # the estimate maximises ℓ(d) − log d on the kept ratios
        best = minimize_scalar(
            lambda d, kept=kept, n1=n1, n2=n2: np.log(d) - log_likelihood(d, kept, n1, n2),
            bounds=(0.5, 20),
            method="bounded",
            options={"xatol": 1e-10},
        )
        assert ids[s] == pytest.approx(best.x, rel=1e-6)
        # the error is 1/√(−ℓ''(d̂)) of the full likelihood over all ratios
        h = 1e-3 * ids[s]
        ll = [log_likelihood(ids[s] + k * h, mu, n1, n2) for k in (-1, 0, 1)]
        second = (ll[0] - 2 * ll[1] + ll[2]) / h**2
        assert errors[s] == pytest.approx((-second) ** -0.5, rel=1e-5)
        assert scales[s] == pytest.approx(
            0.5 * (dist[:, n1 - 1] + dist[:, n2 - 1]).mean(), rel=1e-12
        )


def test_first_scale_is_twonn_mle_without_outliers():
    mu = model_ratios(4.0, 1, 2, 2000, np.random.default_rng(3))
    mu = mu[mu < 5]  # nothing left beyond the outlier threshold
    d_hat, err = gride_from_ratios(mu, 1)
    assert d_hat == pytest.approx(twonn_from_ratios(mu, 0.0, "mle"), rel=1e-10)
    assert err == pytest.approx(d_hat / np.sqrt(len(mu)), rel=1e-12)  # I = N/d² at n1 = 1


def fixture_cases() -> list[str]:
    with np.load(FIXTURE) as f:
        return sorted({key.split("__")[0] for key in f.files if "__" in key} - {"grid2"})


def load_case(case: str) -> tuple[np.ndarray, int, dict[str, np.ndarray]]:
    """Points, number of scales and DADApy's ids, errors and scales of one fixture case."""
    with np.load(FIXTURE) as f:
        points = f[f"{case}__points"].astype(np.float64)
        n_scales = int(np.log2(int(f[f"{case}__range_max"])))
        return points, n_scales, {k: f[f"{case}__{k}"] for k in ("ids", "errors", "scales")}


@pytest.mark.parametrize("case", fixture_cases())
def test_equals_dadapy_return_id_scaling_gride(case):
    # DADApy 0.3.4's values on the same points (benchmarks/make_gride_fixture.py); once as
    # they are, once embedded in 768 dims
    points, n_scales, ref = load_case(case)
    for x in (points, points @ EMBED[: points.shape[1]]):
        est = gride(x, n_scales=n_scales)
        assert len(est.id) == len(ref["ids"]) == n_scales
        np.testing.assert_allclose(est.id, ref["ids"], rtol=1e-6)
        np.testing.assert_allclose(est.id_error, ref["errors"], rtol=1e-6)
        np.testing.assert_allclose(est.scale, ref["scales"], rtol=1e-9)


def test_equidistant_neighbours_as_dadapy():
    # an integer grid: r_2n = r_n for most points. Ratios equal to 1 enter the estimate as
    # 1 + 10ε with DADApy's floor 2e-7 on 1 − μ^(−d), so the ids agree; the errors only to
    # 1e-2, as DADApy's 1 − μ^(−d) keeps about 2 digits there (repgeom: −expm1(−d log μ)).
    # At n1 = 1 every ratio is 1: DADApy returns its bracket's end, 0.001; repgeom refuses.
    points, n_scales, ref = load_case("grid2")
    ranks = 2 ** np.arange(n_scales + 1)
    dist = np.sort(cdist(points, points), axis=1)[:, ranks]  # column 0 is the point itself
    assert ref["ids"][0] == pytest.approx(1e-3, rel=1e-3)
    with pytest.raises(ValueError, match="only 0 of 400 ratios"):
        gride(points, n_scales=n_scales)
    for s in range(1, n_scales):
        mu = dist[:, s + 1] / dist[:, s]
        if s == 1:
            assert (mu == 1).sum() > 300
        d_hat, err = gride_from_ratios(mu, 2**s)
        assert d_hat == pytest.approx(ref["ids"][s], rel=1e-6)
        assert err == pytest.approx(ref["errors"][s], rel=1e-2)


def test_dadapy_fixture_exercises_the_outlier_filter():
    # without the filter the clumped case's first scale would differ: the comparison tests it
    with np.load(FIXTURE) as f:
        x = f["clumps3__points"].astype(np.float64)
        ref = float(f["clumps3__ids"][0])
    dist = np.sort(cdist(x, x), axis=1)[:, 1:3]
    mu = dist[:, 1] / dist[:, 0]
    assert len(kept_by_dadapy(mu)) < len(mu)
    assert abs((len(mu) - 1) / np.log(mu).sum() - ref) > 0.1 * ref


def test_duplicates_are_removed_and_counted():
    x = manifold("cube", 3, 600, seed=4)
    base = gride(x, n_scales=5)
    est = gride(np.vstack([x, x[:40], x[:3]]), n_scales=5)
    assert est.n_duplicates == 43 and est.n_points == 600
    np.testing.assert_allclose(est.id, base.id, rtol=1e-12)
    np.testing.assert_allclose(est.id_error, base.id_error, rtol=1e-12)


def test_invariant_to_translation_rotation_and_scale():
    x = manifold("sphere", 3, 800, seed=5)
    base = gride(x, n_scales=5)
    q = orthonormal_rows(AMBIENT, seed=6)
    for moved, factor in ((x + 3.0, 1.0), (x @ q, 1.0), (x * 1e3, 1e3)):
        est = gride(moved, n_scales=5)
        np.testing.assert_allclose(est.id, base.id, rtol=1e-9)
        np.testing.assert_allclose(est.id_error, base.id_error, rtol=1e-9)
        np.testing.assert_allclose(est.scale, factor * base.scale, rtol=1e-9)


def test_too_few_distinct_points_is_a_clear_error():
    x = manifold("cube", 2, 200, seed=8)
    with pytest.raises(ValueError, match=r"at least 257 distinct points; got 200 \(100 dup.*7"):
        gride(np.vstack([x, x[:100]]), n_scales=8)
    assert len(gride(x, n_scales=7).id) == 7  # 128 neighbours among 199 others
    with pytest.raises(ValueError, match="n_scales"):
        gride(x, n_scales=0)
    with pytest.raises(ValueError, match="distances"):
        gride_from_distances(np.ones((10, 1)))
    with pytest.raises(ValueError, match="> 0"):
        gride_from_distances(np.zeros((10, 3)))


def test_ratios_are_checked_and_the_bracket_is_respected():
    mu = model_ratios(5.0, 2, 4, 500, np.random.default_rng(9))
    with pytest.raises(ValueError, match="above d_max"):
        gride_from_ratios(mu, 2, d_max=1.0)
    with pytest.raises(ValueError, match="below d_min"):
        gride_from_ratios(mu, 2, d_min=50.0, d_max=100.0)
    with pytest.raises(ValueError, match="≥ 1"):
        gride_from_ratios(np.r_[mu, 0.5], 2)
    with pytest.raises(ValueError, match="n1 < n2"):
        gride_from_ratios(mu, 2, 2)
    tied = np.r_[mu, np.ones(5)]  # equidistant neighbours: finite, as in DADApy
    assert all(np.isfinite(gride_from_ratios(tied, 2)))


def test_twonn_bootstrap_error_estimates_the_sampling_spread():
    rng = np.random.default_rng(10)
    d, n = 6.0, 1000
    for discard, fit in ((0.1, "lsq"), (0.0, "mle")):
        # the spread of TwoNN over independent samples, which one sample's bootstrap estimates
        spread = np.std(
            [twonn_from_ratios(model_ratios(d, 1, 2, n, rng), discard, fit) for _ in range(300)]
        )
        mu = model_ratios(d, 1, 2, n, rng)
        err = twonn_bootstrap_error(mu, n_boot=300, seed=1, discard=discard, fit=fit)
        assert err == pytest.approx(spread, rel=0.2)
        assert err == twonn_bootstrap_error(mu, n_boot=300, seed=1, discard=discard, fit=fit)
        assert err != twonn_bootstrap_error(mu, n_boot=300, seed=2, discard=discard, fit=fit)
    assert spread == pytest.approx(d / np.sqrt(n), rel=0.15)  # the MLE's d/√N
    with pytest.raises(ValueError, match="n_boot"):
        twonn_bootstrap_error(mu, n_boot=1)


def test_geometry_gride_shares_the_twonn_neighbours():
    """The geometry job's GRIDE equals gride() on the same subsample; scales beyond the
    distinct points are NaN; the flag compares TwoNN with GRIDE at the reported scale."""
    from repgeom.activations.source import ArraySource
    from repgeom.metrics.geometry import GeometryOptions, geometry_datasets, id_of_sample
    from repgeom.metrics.gride import gride
    from repgeom.workflow.config import options as section_options

    def options(**section) -> GeometryOptions:
        return section_options(GeometryOptions, "metrics.geometry", section)

    rng = np.random.default_rng(5)
    q = np.linalg.qr(rng.normal(size=(64, 64)))[0][:4]
    x = (rng.uniform(size=(300, 4)) @ q).astype(np.float32)
    out = id_of_sample(x, options(gride_scales=9, twonn_bootstrap=30))
    ref = gride(x, n_scales=8)
    np.testing.assert_allclose(out["gride"][:8], ref.id, rtol=1e-12)
    np.testing.assert_allclose(out["gride_error"][:8], ref.id_error, rtol=1e-12)
    np.testing.assert_allclose(out["gride_radius"][:8], ref.scale, rtol=1e-12)
    assert np.isnan(out["gride"][8])  # n2 = 512 > 299 neighbours
    assert out["twonn_error"] > 0
    source = ArraySource(np.stack([x, x * 3]), position=np.arange(300) % 10)
    ds = geometry_datasets(
        source, options(positions=["all"], id_sample=300, id_repeats=1, gride_scale=4)
    )["intrinsic_dimension"]
    assert ds.gride.dims == ("positions", "layer", "repeat", "scale")
    assert ds.scale.values.tolist() == [1, 2, 4, 8, 16, 32, 64, 128]
    at = ds.gride_at_scale.sel(positions="all", layer=0).item()
    assert at == ds.gride.sel(positions="all", layer=0, scale=4).item()
    gap = abs(ds.twonn.sel(positions="all", layer=0).item() - at)
    err = np.hypot(
        ds.twonn_error.sel(positions="all", layer=0).item(),
        ds.gride_at_scale_error.sel(positions="all", layer=0).item(),
    )
    assert ds.twonn_gride_disagree.sel(positions="all", layer=0).item() == int(gap > 2 * err)
    with pytest.raises(ValueError, match="gride_scale 3 is not among"):
        options(gride_scale=3)


def test_gride_function_is_gride_on_the_first_id_subsample_nan_beyond_its_points():
    x = manifold("cube", 3, 200, seed=4)
    x = np.concatenate([x, x[:7]])  # duplicates are removed, as in every ID estimate
    rows = seeded_subsample(x.shape[0], 150, seed=2)
    fn = gride_function(8, sample=150, seed=2)
    ids, errors = fn(x)
    distinct = np.unique(x[rows], axis=0).shape[0]
    fits = int(np.log2(distinct - 1))  # scales whose n2 = 2^(s+1) ≤ distinct − 1
    ref = gride(x[rows], n_scales=fits)
    np.testing.assert_allclose(ids[:fits], ref.id, rtol=1e-12)
    np.testing.assert_allclose(errors[:fits], ref.id_error, rtol=1e-12)
    assert np.isnan(ids[fits:]).all() and np.isnan(errors[fits:]).all() and fits < 8
    # every row when there are fewer than `sample`; two distinct points give no scale at all
    np.testing.assert_allclose(gride_function(4, 10_000)(x)[0], gride(x, 4).id, rtol=1e-12)
    assert np.isnan(gride_function(3, 10)(np.eye(2, 5))[0]).all()
    with pytest.raises(ValueError, match="n_scales"):
        gride_function(0, 10)
