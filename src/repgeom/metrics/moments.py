"""Streaming first and second moments of row vectors in float64 (shifted for stability)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy.linalg.blas import dsyrk


class Moments:
    """Accumulates n, Σ(x−s) and (X−s)ᵀ(X−s) over blocks of rows; s is the first block's mean.

    The shift keeps the float64 sums well conditioned when the data sit far from the origin
    (massive activations), so the centred covariance is exact to float64 rounding.
    """

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.n = 0
        self.shift: np.ndarray | None = None
        self._sum = np.zeros(dim, dtype=np.float64)
        self._gram = np.zeros((dim, dim), dtype=np.float64, order="F")

    def update(self, block: np.ndarray) -> None:
        """Add a block of rows (n_i, dim) of any float dtype."""
        x = np.asarray(block, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"expected a block of shape (n, {self.dim}), got {x.shape}")
        if x.shape[0] == 0:
            return
        if not np.isfinite(x).all():
            raise FloatingPointError("block holds NaN or infinite values")
        if self.shift is None:
            self.shift = x.mean(axis=0)
        y = x - self.shift
        self.n += x.shape[0]
        self._sum += y.sum(axis=0)
        # symmetric rank-k update (half the flops of y.T @ y); fills the upper triangle
        self._gram = dsyrk(1.0, y.T, beta=1.0, c=self._gram, trans=0, lower=0, overwrite_c=1)

    @property
    def mean(self) -> np.ndarray:
        """Mean of all rows seen."""
        self._check()
        return self.shift + self._sum / self.n

    def scatter(self) -> np.ndarray:
        """Centred scatter matrix X_cᵀX_c (float64, dim × dim)."""
        self._check()
        m = self._sum / self.n
        upper = np.triu(self._gram)
        gram = upper + np.triu(upper, 1).T
        return gram - self.n * np.outer(m, m)

    def eigvalsh(self) -> np.ndarray:
        """Eigenvalues of the centred scatter matrix, descending, clipped at 0."""
        w = np.linalg.eigvalsh(self.scatter())[::-1]
        return np.clip(w, 0.0, None)

    def _check(self) -> None:
        if self.n == 0:
            raise ValueError("no rows were added")

    @classmethod
    def of(cls, blocks: Iterable[np.ndarray], dim: int) -> Moments:
        """Accumulate every block of an iterable."""
        acc = cls(dim)
        for b in blocks:
            acc.update(b)
        return acc
