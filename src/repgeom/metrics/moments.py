"""Streaming first and second moments of row vectors in float64 (shifted for stability)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
from scipy.linalg.blas import dsyrk

SUB_BLOCK = 512  # rows converted and added at a time: they stay in cache between the passes


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
        for x in self.sub_blocks(block):
            y = self.centre(x)
            self.add_centred(y, y.sum(axis=0))

    def sub_blocks(self, block: np.ndarray) -> Iterator[np.ndarray]:
        """Float64 copies of a block's rows, SUB_BLOCK at a time, after checking its shape."""
        x = np.asarray(block)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"expected a block of shape (n, {self.dim}), got {x.shape}")
        for start in range(0, x.shape[0], SUB_BLOCK):
            yield np.array(x[start : start + SUB_BLOCK], dtype=np.float64)

    def centre(self, x: np.ndarray) -> np.ndarray:
        """Subtract the shift from a float64 block in place (the first block sets the shift)."""
        if self.shift is None:
            self.shift = x.mean(axis=0)
        return np.subtract(x, self.shift, out=x)

    def add_centred(self, y: np.ndarray, col_sum: np.ndarray) -> None:
        """Add rows already passed through :meth:`centre`, with their column sums."""
        if not np.isfinite(col_sum).all():
            raise FloatingPointError("block holds NaN, infinite or overflowing values")
        self.n += y.shape[0]
        self._sum += col_sum
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
