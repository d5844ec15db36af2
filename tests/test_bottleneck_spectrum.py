"""LM-head spectrum and singular entropy against float64 numpy references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from repgeom.bottleneck.spectrum import (
    lm_head_spectrum,
    singular_entropy,
    singular_entropy_sq,
    singular_values,
    singular_values_gram,
    singular_values_svd,
)


def reference_kl(weights: np.ndarray) -> float:
    """KL(p ‖ uniform) written out term by term, independent of the library."""
    p = weights / weights.sum()
    r = len(p)
    return float(sum(pi * np.log(pi * r) for pi in p if pi > 0))


def test_orthogonal_head_has_zero_entropy():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((64, 16)))  # orthonormal columns: σ all equal
    ds = lm_head_spectrum(3.0 * q)
    np.testing.assert_allclose(ds["sigma"].values, 3.0, rtol=1e-12)
    assert abs(float(ds["singular_entropy"])) < 1e-12
    assert abs(float(ds["singular_entropy_sq"])) < 1e-12


@pytest.mark.parametrize("shape", [(200, 12), (12, 30), (40, 40)])
def test_entropy_matches_reference_and_is_bounded(shape):
    rng = np.random.default_rng(1)
    w = rng.standard_normal(shape) * np.logspace(0, -3, shape[1])  # anisotropic columns
    ds = lm_head_spectrum(w.astype(np.float32))
    ref_sigma = np.linalg.svd(w.astype(np.float32).astype(np.float64), compute_uv=False)
    np.testing.assert_allclose(ds["sigma"].values, ref_sigma, rtol=1e-9, atol=0)
    r = min(shape)
    assert ds.sizes["index"] == r
    assert float(ds["singular_entropy"]) == pytest.approx(reference_kl(ref_sigma), abs=1e-12)
    assert float(ds["singular_entropy_sq"]) == pytest.approx(reference_kl(ref_sigma**2), abs=1e-12)
    assert 0 < float(ds["singular_entropy"]) <= np.log(r)
    assert float(ds["max_entropy"]) == pytest.approx(np.log(r))


def test_entropy_upper_bound_reached_by_rank_one():
    s = np.array([5.0, 0.0, 0.0, 0.0])
    assert singular_entropy(s) == pytest.approx(np.log(4))
    assert singular_entropy_sq(s) == pytest.approx(np.log(4))


def test_gram_route_equals_svdvals_where_used():
    rng = np.random.default_rng(2)
    # tall matrix, condition number 1e3 (< max_gram_condition 1e4): auto takes the Gram route
    u, _ = np.linalg.qr(rng.standard_normal((2000, 24)))
    v, _ = np.linalg.qr(rng.standard_normal((24, 24)))
    sigma_true = np.logspace(0, -3, 24)
    w = (u * sigma_true) @ v.T
    s_auto, route = singular_values(w)
    assert route == "gram"
    s_svd = singular_values_svd(w)
    # stated tolerance: relative error ≤ ε·κ² ≈ 2e-10 for κ = 1e3; checked at 1e-8
    np.testing.assert_allclose(s_auto, s_svd, rtol=1e-8, atol=0)
    np.testing.assert_allclose(s_svd, sigma_true, rtol=1e-10)
    # wide orientation uses W Wᵀ
    np.testing.assert_allclose(singular_values_gram(w.T), s_svd, rtol=1e-8)


def test_ill_conditioned_falls_back_to_svd():
    rng = np.random.default_rng(3)
    u, _ = np.linalg.qr(rng.standard_normal((500, 10)))
    w = u * np.logspace(0, -9, 10)  # κ = 1e9: Gram would lose σ_min entirely
    s, route = singular_values(w)
    assert route == "svd"
    np.testing.assert_allclose(s, np.logspace(0, -9, 10), rtol=1e-6)


def test_accepts_bfloat16_tensor_and_rejects_bad_input(tmp_path):
    w = torch.randn(50, 8, dtype=torch.bfloat16)
    ds = lm_head_spectrum(w)
    ref = np.linalg.svd(w.double().numpy(), compute_uv=False)
    np.testing.assert_allclose(ds["sigma"].values, ref, rtol=1e-9)
    for v in ds.data_vars:
        assert ds[v].attrs["long_name"] and ds[v].attrs["units"]
    ds.to_netcdf(tmp_path / "spectrum.nc", engine="h5netcdf")
    with pytest.raises(ValueError, match="NaN"):
        lm_head_spectrum(np.full((4, 2), np.nan))
    with pytest.raises(ValueError, match="2-D"):
        lm_head_spectrum(np.ones(5))
    with pytest.raises(ValueError, match="zero"):
        lm_head_spectrum(np.zeros((4, 2)))
