"""Exact neighbours: the torch and faiss routes agree with brute force in float64."""

from __future__ import annotations

from importlib.util import find_spec

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from repgeom.metrics.neighbors import knn

BACKENDS = [
    "torch",
    pytest.param(
        "faiss",
        marks=pytest.mark.skipif(find_spec("faiss") is None, reason="faiss-cpu not installed"),
    ),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("k", [5, 40])
def test_self_search_matches_brute_force(backend, k):
    x = np.random.default_rng(0).normal(size=(700, 20)) + 50.0
    dist, idx = knn(x, None, k=k, block=128, backend=backend)
    full = cdist(x, x)
    np.fill_diagonal(full, np.inf)
    ref_idx = np.argsort(full, axis=1)[:, :k]
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(dist, np.take_along_axis(full, ref_idx, axis=1), rtol=1e-12)


@pytest.mark.parametrize("n", [129, 131, 140])
@pytest.mark.parametrize("k", [20, 60])  # each pair once (k ≤ 32), whole rows (k > 32)
def test_last_block_narrower_than_k(n, k):
    x = np.random.default_rng(2).normal(size=(n, 8)) + 10.0
    dist, idx = knn(x, None, k=k, block=128)  # the last block has n − 128 < k columns left
    full = cdist(x, x)
    np.fill_diagonal(full, np.inf)
    ref_idx = np.argsort(full, axis=1)[:, :k]
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(dist, np.take_along_axis(full, ref_idx, axis=1), rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_cross_search_and_too_few_points(backend):
    rng = np.random.default_rng(1)
    q, r = rng.normal(size=(50, 6)), rng.normal(size=(80, 6))
    dist, idx = knn(q, r, k=3, backend=backend)
    full = cdist(q, r)
    np.testing.assert_array_equal(idx, np.argsort(full, axis=1)[:, :3])
    with pytest.raises(ValueError, match="k=10"):
        knn(q[:5], None, k=10, backend=backend)


@pytest.mark.parametrize(("n", "k"), [(700, 40), (300, 140), (130, 129)])
def test_ranks_equal_the_full_rerank(n, k):
    # only the candidates near each rank are re-ranked in float64; the result is the same
    x = np.random.default_rng(3).normal(size=(n, 16)) + 5.0
    ranks = np.array(
        [r for r in (1, 2, 4, 8, 16, 32, 64, 128) if r <= (k if k == n - 1 else k - 4)]
    )
    dist, idx = knn(x, None, k=k, block=128)
    dist_r, idx_r = knn(x, None, k=k, block=128, ranks=ranks)
    np.testing.assert_array_equal(idx_r, idx[:, ranks - 1])
    np.testing.assert_allclose(dist_r, dist[:, ranks - 1], rtol=1e-15)
    with pytest.raises(ValueError, match="ranks must lie"):
        knn(x[:200], None, k=40, ranks=np.array([1, 37]))
