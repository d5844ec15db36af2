"""Anisotropy: share of the centred variance along the first principal direction."""

from __future__ import annotations

import numpy as np

from repgeom.metrics.moments import Moments


def anisotropy_from_eigvals(eigvals: np.ndarray) -> float:
    """σ₁² / ‖X_c‖_F² from the eigenvalues of the centred scatter matrix."""
    w = np.asarray(eigvals, dtype=np.float64)
    total = w.sum()
    if total <= 0:
        raise ValueError("the centred data have zero variance; anisotropy is undefined")
    return float(w.max() / total)


def anisotropy(x: np.ndarray) -> float:
    """Anisotropy of a (n, d) matrix of row vectors, in one float64 pass."""
    x = np.asarray(x)
    return anisotropy_from_eigvals(Moments.of([x], x.shape[1]).eigvalsh())
