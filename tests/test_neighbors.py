"""Exact neighbours: the torch and faiss routes agree with brute force in float64."""

from __future__ import annotations

from importlib.util import find_spec

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from repgeom.neighbors import knn

BACKENDS = [
    "torch",
    pytest.param(
        "faiss",
        marks=pytest.mark.skipif(find_spec("faiss") is None, reason="faiss-cpu not installed"),
    ),
]


@pytest.mark.parametrize("backend", BACKENDS)
def test_self_search_matches_brute_force(backend):
    x = np.random.default_rng(0).normal(size=(700, 20)) + 50.0
    dist, idx = knn(x, None, k=5, block=128, backend=backend)
    full = cdist(x, x)
    np.fill_diagonal(full, np.inf)
    ref_idx = np.argsort(full, axis=1)[:, :5]
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(dist, np.take_along_axis(full, ref_idx, axis=1), rtol=1e-12)


@pytest.mark.parametrize("n", [129, 131, 200])
def test_last_block_narrower_than_k(n):
    x = np.random.default_rng(2).normal(size=(n, 8))
    dist, idx = knn(x, None, k=60, block=128)  # the last block has n − 128 < 60 columns left
    full = cdist(x, x)
    np.fill_diagonal(full, np.inf)
    np.testing.assert_allclose(dist, np.sort(full, axis=1)[:, :60], rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_cross_search_and_too_few_points(backend):
    rng = np.random.default_rng(1)
    q, r = rng.normal(size=(50, 6)), rng.normal(size=(80, 6))
    dist, idx = knn(q, r, k=3, backend=backend)
    full = cdist(q, r)
    np.testing.assert_array_equal(idx, np.argsort(full, axis=1)[:, :3])
    with pytest.raises(ValueError, match="k=10"):
        knn(q[:5], None, k=10, backend=backend)
