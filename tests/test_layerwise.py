"""Per-layer anisotropy over an activation store equals a float64 SVD of the same rows."""

from __future__ import annotations

import numpy as np
import pytest

from repgeom.metrics.layerwise import anisotropy_dataset, layers_to_use, select_rows
from repgeom.source import ArraySource


def svd_anisotropy(x: np.ndarray) -> float:
    s = np.linalg.svd(x.astype(np.float64) - x.astype(np.float64).mean(0), compute_uv=False)
    return float(s[0] ** 2 / (s**2).sum())


@pytest.fixture
def source():
    rng = np.random.default_rng(0)
    hidden = rng.normal(size=(3, 600, 16)) * np.linspace(1, 4, 16)
    hidden[:, ::60] += 300.0  # position-0 tokens carry massive activations
    return ArraySource(hidden.astype(np.float32), position=np.tile(np.arange(60), 10))


def test_matches_svd_with_and_without_position_zero(source):
    opts = {"drop_first_position": False}
    ds = anisotropy_dataset(source, opts)
    for layer in source.layers:
        assert ds.anisotropy.sel(layer=layer) == pytest.approx(
            svd_anisotropy(source.read(layer)), rel=1e-8
        )
    dropped = anisotropy_dataset(source, {"drop_first_position": True})
    keep = source.position != 0
    for layer in source.layers:
        ref = svd_anisotropy(source.read(layer)[keep])
        assert dropped.anisotropy.sel(layer=layer) == pytest.approx(ref, rel=1e-8)
    assert (dropped.anisotropy < 0.5).all() and (ds.anisotropy > 0.5).all()
    assert dropped.attrs["n_tokens"] == 590


def test_token_budget_and_layers(source):
    rows = select_rows(source, False, 100, seed=1)
    assert len(rows) == 100 and (np.diff(rows) > 0).all()
    assert np.array_equal(rows, select_rows(source, False, 100, seed=1))
    assert layers_to_use(source, [-1, 0]) == [0, 2]
    with pytest.raises(ValueError, match="layer 5 does not exist"):
        layers_to_use(source, [5])
    ds = anisotropy_dataset(
        source, {"drop_first_position": False, "token_budget": 100, "layers": [1], "seed": 1}
    )
    assert ds.anisotropy.sel(layer=1) == pytest.approx(
        svd_anisotropy(source.read(1, rows)), rel=1e-8
    )
    assert list(ds.layer.values) == [1]
