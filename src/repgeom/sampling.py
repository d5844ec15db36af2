"""The one seeded subsample every layer draws tokens with."""

from __future__ import annotations

import numpy as np


def seeded_subsample(pool: int | np.ndarray, size: int, seed: int, repeat: int = 0) -> np.ndarray:
    """Sorted rows drawn without replacement from ``pool`` (n: rows 0…n−1, or an array of row
    indices), ``size`` of them, by a generator seeded with (seed, repeat); the whole pool when it
    holds no more. The one subsample of every study: the same seed, pool and repeat always draw
    the same rows."""
    rows = np.arange(pool) if isinstance(pool, int | np.integer) else np.asarray(pool)
    if size >= len(rows):
        return np.sort(rows)
    rng = np.random.default_rng([seed, repeat])
    return np.sort(rng.choice(rows, size=size, replace=False))
