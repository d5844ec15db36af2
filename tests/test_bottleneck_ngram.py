"""5-gram counting, next-token matrix, W-error and memory refusal against brute force."""

from __future__ import annotations

import math
import tracemalloc
from collections import Counter

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse
import xarray as xr

from repgeom.bottleneck.memory import COUNT_BYTES_PER_GRAM, ngram_memory_estimate, propack_bytes
from repgeom.bottleneck.ngram_counts import encode_rows, ngram_counts
from repgeom.bottleneck.ngram_svd import top_singular_values
from repgeom.bottleneck.ngram_werror import matrix_werror, werror_thresholds, wrank_estimate
from repgeom.bottleneck.options import NgramOptions
from repgeom.workflow.config import options


def ngram(**section) -> NgramOptions:
    """``bottleneck.ngram`` with these keys, the others the schema's defaults."""
    return options(NgramOptions, "bottleneck.ngram", section)


def brute_force(windows, lengths, n=5):
    """Python Counter over n-grams inside each window's valid part."""
    grams = Counter()
    for row, length in zip(windows.tolist(), lengths, strict=True):
        for i in range(length - n + 1):
            grams[tuple(row[i : i + n])] += 1
    return grams


def matrix_from_brute(grams, min_count):
    ctx = Counter()
    for g, c in grams.items():
        ctx[g[:-1]] += c
    kept = sorted(c for c in ctx if ctx[c] >= min_count)
    keep = set(kept)
    probs = {(g[:-1], g[-1]): cnt / ctx[g[:-1]] for g, cnt in grams.items() if g[:-1] in keep}
    return kept, probs


@pytest.mark.parametrize("min_count", [1, 2, 3])
def test_counts_match_brute_force_with_boundaries_and_padding(min_count):
    rng = np.random.default_rng(0)
    v = 5
    w = rng.integers(0, v, size=(30, 12)).astype(np.int32)
    w[:10] = np.tile([0, 1, 2, 3, 4, 0], 2)  # a repeated pattern: contexts with counts > 1
    lengths = rng.integers(0, 13, size=30)
    lengths[:10] = 12
    counts = ngram_counts(w, v, 5, min_count, lengths=lengths)
    grams = brute_force(w, lengths)
    kept, probs = matrix_from_brute(grams, min_count)
    assert counts.n_grams == sum(grams.values())
    assert [tuple(c) for c in counts.contexts.tolist()] == kept  # sorted lexicographically
    p = counts.matrix
    assert isinstance(p, scipy.sparse.csr_array) and p.dtype == np.float64
    assert p.shape == (len(kept), v) and p.nnz == len(probs)
    dense = p.toarray()
    for (ctx, tok), prob in probs.items():
        assert dense[kept.index(ctx), tok] == pytest.approx(prob, abs=1e-15)
    np.testing.assert_allclose(dense.sum(axis=1), 1.0, rtol=1e-14)
    ctx_totals = Counter()
    for g, c in grams.items():
        ctx_totals[g[:-1]] += c
    assert counts.context_counts.tolist() == [ctx_totals[c] for c in kept]
    assert min(counts.context_counts) >= min_count


def test_no_ngram_across_window_boundaries():
    # the stream 0 1 2 3 | 4 5 6 7 would hold 5-grams across the cut; the windows hold none
    w = np.array([[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]])
    c = ngram_counts(w, 10)
    assert c.n_grams == 2
    assert c.contexts.tolist() == [[0, 1, 2, 3], [5, 6, 7, 8]]
    assert c.matrix.toarray()[0, 4] == 1.0 and c.matrix.toarray()[1, 9] == 1.0
    with pytest.raises(ValueError, match="min_count"):
        ngram_counts(w, 10, min_count=2)
    with pytest.raises(ValueError, match="token ids"):
        ngram_counts(w, 9)
    with pytest.raises(ValueError, match="hold no 5-gram"):
        ngram_counts(w[:, :4], 10)


def test_encode_rows_large_vocab_keeps_order_and_equality():
    rng = np.random.default_rng(1)
    base = 3_000_000  # base⁴ > 2⁶³: exercises the dense-rank compression
    rows = rng.integers(0, base, size=(500, 4))
    rows[250:] = rows[:250]
    keys = encode_rows([rows[:, j] for j in range(4)], base)
    order = np.lexsort(rows.T[::-1])
    assert (np.diff(keys[order]) >= 0).all()  # lexicographic order preserved
    same = (rows[:, None, :] == rows[None, :, :]).all(-1)
    np.testing.assert_array_equal(keys[:, None] == keys[None, :], same)


def low_rank_p(c=60, v=40, rank=3, seed=2):
    rng = np.random.default_rng(seed)
    mix = rng.dirichlet(np.full(rank, 0.3), size=c)
    dist = rng.dirichlet(np.full(v, 0.2), size=rank)
    dist[dist < 0.02] = 0
    dist /= dist.sum(axis=1, keepdims=True)
    return scipy.sparse.csr_array(mix @ dist)


def test_werror_on_low_rank_matrix_dense_route():
    p = low_rank_p()
    ds = matrix_werror(p, k=10, d_grid=range(11))
    assert ds.attrs["svd_route"] == "dense"
    e = ds["werror"].values
    assert e[0] == pytest.approx(1.0, abs=1e-14)
    assert (np.diff(e) <= 1e-15).all()
    assert (e[3:] <= 1e-10).all() and e[2] > 1e-3
    # independent reference: dense float64 SVD and Eckart–Young
    s = np.linalg.svd(p.toarray(), compute_uv=False)
    ref = [np.sqrt(np.sum(s[d:] ** 2)) / np.linalg.norm(p.toarray()) for d in range(11)]
    np.testing.assert_allclose(e, ref, atol=1e-12)
    assert float(ds["frobenius_norm"]) == pytest.approx(np.linalg.norm(p.toarray()), rel=1e-14)
    for var in ds.data_vars:
        assert ds[var].attrs["long_name"] and ds[var].attrs["units"]


def test_propack_route_equals_dense_svd():
    rng = np.random.default_rng(3)
    p = scipy.sparse.random_array((300, 200), density=0.05, rng=rng, format="csr")
    s_sparse, route, kmax = top_singular_values(p, 20, method="propack")
    assert kmax in (60, 120, 200)
    assert route == "propack"
    s_dense = scipy.linalg.svdvals(p.toarray())
    np.testing.assert_allclose(s_sparse, s_dense[:20], rtol=1e-10)
    ds = matrix_werror(p, 20, method="propack")
    ref = np.sqrt(np.sum(s_dense[20:] ** 2)) / np.linalg.norm(p.toarray())
    assert float(ds["werror"].sel(rank=20)) == pytest.approx(ref, rel=1e-8)
    # on a low-rank P the sparse route's residual is at the rounding level (≤ 1e-6 stated)
    lr = low_rank_p(c=400, v=300, rank=3)
    ds = matrix_werror(lr, 8, d_grid=range(9), method="propack")
    e = ds["werror"].values
    assert e[0] == pytest.approx(1.0) and (np.diff(e) <= 1e-12).all() and (e[3:] <= 1e-6).all()


def test_thresholds_analytic():
    def ds_of(sigma, beyond):
        fro = math.sqrt(sum(s * s for s in sigma) + beyond)
        return xr.Dataset(
            {
                "sigma": ("index", np.array(sigma)),
                "frobenius_norm": fro,
                "residual_beyond_k": beyond,
            }
        )

    # σ = 3, 2, 1: W-error = 1, sqrt(5/14) = .598, sqrt(1/14) = .267, 0
    assert werror_thresholds(ds_of([3.0, 2.0, 1.0], 0.0)) == {0.5: 2, 0.2: 3, 0.1: 3}
    assert werror_thresholds(ds_of([3.0, 2.0], 1.0)) == {0.5: 2, 0.2: "> 2", 0.1: "> 2"}


def markov_windows(v, s, length, seed=4):
    rng = np.random.default_rng(seed)
    nxt = rng.integers(0, v, size=(v, 3))
    w = np.empty((s, length), dtype=np.int32)
    w[:, 0] = rng.integers(0, v, s)
    for j in range(1, length):
        w[:, j] = nxt[w[:, j - 1], rng.integers(0, 3, s)]
    return w


def test_wrank_estimate_end_to_end_and_memory_estimate_is_honest(tmp_path):
    w = markov_windows(400, 300, 64)
    tracemalloc.start()
    ds = wrank_estimate(w, 400, ngram(k=30, min_count=2, max_tokens=200 * 64))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert ds.attrs["n_windows"] == 200 and ds.attrs["svd_route"] == "propack"
    assert ds["rank"].values.tolist() == [0, 1, 2, 4, 8, 16, 30]
    assert ds.attrs["k"] == 30 and ds.sizes["index"] == 30
    est = ds.attrs["estimated_peak_bytes"]
    assert peak <= est * 1.1 and est <= 3 * peak, (peak, est)  # measured vs estimated peak
    p = ngram_counts(w[:200], 400, min_count=2).matrix
    s = scipy.linalg.svdvals(p.toarray())
    np.testing.assert_allclose(ds["sigma"].values, s[:30], rtol=1e-9)
    assert ds.attrs["n_contexts"] == p.shape[0] and ds.attrs["nnz"] == p.nnz
    ds.to_netcdf(tmp_path / "werror.nc", engine="h5netcdf")


def test_memory_refusal_before_allocating():
    huge = np.broadcast_to(np.zeros(1, dtype=np.int32), (10**7, 2048))  # 80 GB if real
    tracemalloc.start()
    with pytest.raises(MemoryError, match="max_tokens"):
        wrank_estimate(huge, 50_000, ngram(k=1000), memory_budget=8 * 2**30)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 2**20  # refused before any array of the size of the data was allocated
    # counting fits, the SVD stage does not: k is named
    w = markov_windows(1000, 200, 64, seed=5)
    with pytest.raises(MemoryError, match=r"lower k .*min_count"):
        wrank_estimate(w, 1000, ngram(k=500), memory_budget=8 * 2**20)


def test_memory_estimate_formula():
    est = ngram_memory_estimate(1000, 128, 50_000, 100, 1, 5, n_contexts=5000, nnz=20_000)
    assert est["n_grams"] == 1000 * 124
    assert est["counting"] == COUNT_BYTES_PER_GRAM * 124_000
    assert est["matrix"] == 20_000 * 12 + 5001 * 4
    kx = 300  # first Lanczos basis 3k
    lwork = 55_000 + 9 * kx + 2 * kx**2 + 4 + 55_000
    assert (
        est["svd"]
        == propack_bytes(100, 5000, 50_000)
        == (8 * (5000 * (kx + 1) + 50_000 * kx + lwork + 55_000) + 4 * (2 * kx + 2))
    )
    assert est["peak"] == max(est["counting"], est["matrix"] + est["svd"])
    # the options' estimate is the same, with their k, min_count and n
    o = ngram(k=100, max_tokens=128 * 7 + 5)
    assert o.memory_estimate(1000, 128, 50_000, n_contexts=5000, nnz=20_000) == est
    assert o.windows_kept(50, 128) == 7 and o.windows_kept(3, 128) == 3
    assert ngram(k=100).windows_kept(50, 128) == 50  # no token budget


def test_propack_on_a_matrix_of_lower_rank_than_k_falls_back_to_exact():
    import scipy.sparse

    from repgeom.bottleneck.ngram_werror import matrix_werror

    rng = np.random.default_rng(0)
    dense = rng.random((120, 3)) @ rng.random((3, 90))
    ds = matrix_werror(scipy.sparse.csr_array(dense), k=60, method="propack")
    assert ds.attrs["svd_route"] == "dense"
    ranks = ds["rank"].values
    assert float(ds.werror.sel(rank=ranks[ranks >= 3][0])) <= 1e-10
    ref = np.linalg.svd(dense, compute_uv=False)
    np.testing.assert_allclose(ds.sigma.values[:3], ref[:3], rtol=1e-10)
