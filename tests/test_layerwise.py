"""Token and layer selection shared by the metrics."""

from __future__ import annotations

import numpy as np
import pytest

from repgeom.activations.source import ArraySource
from repgeom.metrics.layerwise import layers_to_use, select_rows


@pytest.fixture
def source():
    hidden = np.random.default_rng(0).normal(size=(3, 600, 4)).astype(np.float32)
    return ArraySource(hidden, position=np.tile(np.arange(60), 10))


def test_rows_without_position_zero_and_budget(source):
    assert select_rows(source, False, None, 0) is None
    rows = select_rows(source, True, None, 0)
    assert len(rows) == 590 and (source.position[rows] != 0).all()
    sub = select_rows(source, True, 100, seed=1)
    assert len(sub) == 100 and (np.diff(sub) > 0).all() and (source.position[sub] != 0).all()
    assert np.array_equal(sub, select_rows(source, True, 100, seed=1))
    with pytest.raises(ValueError, match="at least 2"):
        select_rows(ArraySource(np.zeros((1, 1, 2)), position=np.zeros(1)), True, None, 0)


def test_layers(source):
    assert layers_to_use(source, None) == [0, 1, 2]
    assert layers_to_use(source, [-1, 0]) == [0, 2]
    with pytest.raises(ValueError, match="layer 5 does not exist"):
        layers_to_use(source, [5])


def test_seeded_subsample_is_the_same_draw_everywhere():
    from repgeom.sampling import seeded_subsample

    a = seeded_subsample(1000, 50, seed=3)
    assert len(a) == 50 and len(set(a)) == 50 and (np.diff(a) > 0).all()
    assert np.array_equal(a, seeded_subsample(np.arange(1000), 50, seed=3))
    assert not np.array_equal(a, seeded_subsample(1000, 50, seed=3, repeat=1))
    assert not np.array_equal(a, seeded_subsample(1000, 50, seed=4))
    pool = np.arange(0, 2000, 2)
    assert set(seeded_subsample(pool, 50, seed=3)) <= set(pool)
    assert np.array_equal(seeded_subsample(7, 50, seed=3), np.arange(7))  # whole pool
