"""The anisotropy family in one streaming pass: spectrum, effective rank, power form, cosine."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from repgeom.metrics.conventions import CONVENTIONS
from repgeom.metrics.moments import Moments


class FamilyAccumulator:
    """One pass over row blocks: centred moments (float64) and the sum of unit vectors Σ xᵢ/‖xᵢ‖."""

    def __init__(self, dim: int) -> None:
        self.moments = Moments(dim)
        self.unit_sum = np.zeros(dim, dtype=np.float64)

    def update(self, block: np.ndarray) -> None:
        """Add a block of rows (n_i, dim)."""
        for x64 in self.moments.sub_blocks(block):
            self.add(x64, np.einsum("ij,ij->i", x64, x64))

    def add(self, x64: np.ndarray, sq: np.ndarray) -> None:
        """Add float64 rows with their squared norms; the rows are centred in place (pass a
        copy to keep them)."""
        if not np.isfinite(sq).all():
            raise FloatingPointError("block holds NaN, infinite or overflowing values")
        if (sq == 0).any():
            raise ValueError(
                f"{int((sq == 0).sum())} zero vector(s): their cosine similarity is undefined"
            )
        y = self.moments.centre(x64)
        # one pass gives Σyᵢ and Σyᵢ/‖xᵢ‖; Σxᵢ/‖xᵢ‖ = Σyᵢ/‖xᵢ‖ + shift·Σ1/‖xᵢ‖
        weights = np.ones((len(y), 2))
        weights[:, 1] = 1.0 / np.sqrt(sq)
        sums = y.T @ weights
        self.unit_sum += sums[:, 1] + self.moments.shift * weights[:, 1].sum()
        self.moments.add_centred(y, sums[:, 0])

    @classmethod
    def of(cls, blocks: Iterable[np.ndarray], dim: int) -> FamilyAccumulator:
        acc = cls(dim)
        for b in blocks:
            acc.update(b)
        return acc


def explained_variance(eigvals: np.ndarray, top_k: int) -> np.ndarray:
    """Share of the centred variance along each of the top-k principal directions (NaN-padded)."""
    w = np.asarray(eigvals, dtype=np.float64)
    out = np.full(top_k, np.nan)
    share = w[:top_k] / w.sum()
    out[: len(share)] = share
    return out


def effective_rank(eigvals: np.ndarray) -> float:
    """exp of the Shannon entropy of the normalised eigenvalues (Roy & Vetterli 2007)."""
    w = np.asarray(eigvals, dtype=np.float64)
    p = w[w > 0] / w.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


TRACING_RANKME_EPS = 1e-7  # added to every p_k by the tracing convention
TRACING_ALPHA_RANKS = (11, 99)  # eigen-indices (1-based, inclusive) of the tracing α-ReQ fit


def rankme(eigvals: np.ndarray, convention: str = "garrido") -> float:
    """RankMe: exp of the Shannon entropy of a normalised spectrum, by ``convention``.

    From covariance (or scatter) eigenvalues λ. ``garrido`` (Garrido et al. 2023): σ_k =
    √max(λ_k, 0), p_k = σ_k/Σσ, zero terms ignored (no ε added); unlike :func:`effective_rank`,
    which normalises λ itself, this spreads weight further into the tail. ``tracing`` (Li et al.
    2025): p_k = λ_k/Σλ + 1e-7 over every eigenvalue given (zeros included). For a flat spectrum
    of m values both give m (tracing up to its ε).
    """
    choices = CONVENTIONS["rankme"][0]
    if convention not in choices:
        raise ValueError(f"unknown RankMe convention {convention!r}; choose from {choices}")
    lam = np.clip(np.asarray(eigvals, dtype=np.float64), 0.0, None)
    if not lam.sum() > 0:
        raise ValueError("no positive eigenvalue: RankMe is undefined")
    if convention == "tracing":
        p = lam / lam.sum() + TRACING_RANKME_EPS
    else:
        s = np.sqrt(lam)
        p = s[s > 0] / s.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def alpha_req(eigvals: np.ndarray, first: int, last: int, weighted: bool = False) -> float:
    """α-ReQ (Agrawal et al. 2022): the decay exponent α of the eigenspectrum, λ_i ∝ i^−α.

    The eigenvalues are in descending order and ranked from 1 (the largest). α is minus the
    slope of the least-squares line log λ_i = c − α·log i over the ranks i = ``first`` …
    ``last``, both inclusive; ``weighted``: each rank weighted 1/i, so every unit of log rank
    counts the same (the tracing convention's fit, over :data:`TRACING_ALPHA_RANKS`). ``last``
    is capped at the number of positive eigenvalues (zeros, or rounding below zero, have no
    logarithm); fewer than 2 ranks left raises ValueError.
    """
    w = np.asarray(eigvals, dtype=np.float64)
    if w.ndim != 1:
        raise ValueError(f"expected a 1-D spectrum, got shape {w.shape}")
    if (np.diff(w) > 0).any():
        raise ValueError("eigenvalues must be in descending order")
    positive = int((w > 0).sum())
    stop = min(last, positive)
    if first < 1 or stop - first + 1 < 2:
        raise ValueError(
            f"alpha_req fits ranks {first}…{last} (1-based, inclusive), but only "
            f"{max(0, stop - max(first, 1) + 1)} of them hold a positive eigenvalue "
            f"({positive} of {len(w)} are positive); it needs at least 2"
        )
    ranks = np.arange(first, stop + 1)
    u = np.log(ranks)
    v = np.log(w[first - 1 : stop])
    if weighted:
        weight = (1.0 / ranks) / (1.0 / ranks).sum()
        u = u - weight @ u
        return float(-((weight * u) @ (v - weight @ v)) / ((weight * u) @ u))
    u = u - u.mean()
    return float(-(u @ (v - v.mean())) / (u @ u))


def mean_cosine_from_sum(unit_sum: np.ndarray, n: int) -> float:
    """Mean cosine over all pairs i≠j of uncentred vectors: (‖Σuᵢ‖² − n)/(n(n−1))."""
    if n < 2:
        raise ValueError("mean cosine needs at least 2 vectors")
    s = np.asarray(unit_sum, dtype=np.float64)
    return float((s @ s - n) / (n * (n - 1)))


def mean_cosine(x: np.ndarray) -> float:
    """Mean pairwise cosine similarity of the rows of x (Ethayarajh 2019), exact, in O(n·d)."""
    acc = FamilyAccumulator.of([x], np.asarray(x).shape[1])
    return mean_cosine_from_sum(acc.unit_sum, acc.moments.n)


@dataclass(frozen=True)
class PowerResult:
    """Power-iteration estimate of σ₁²/‖X_c‖_F² and how it ended."""

    value: float
    iterations: int
    residual: float  # ‖Sv − λv‖ / λ at the last iterate
    converged: bool


def anisotropy_power(
    scatter: np.ndarray, tol: float = 1e-10, max_iter: int = 1000, seed: int = 0
) -> PowerResult:
    """Top eigenvalue of the centred scatter matrix by power iteration, over its trace.

    Stops when the relative residual ‖Sv − λv‖/λ falls below ``tol``; after ``max_iter``
    iterations without that, the result says converged=False (callers record or raise).
    """
    s = np.asarray(scatter, dtype=np.float64)
    trace = float(np.trace(s))
    if trace <= 0:
        raise ValueError("the centred data have zero variance; anisotropy is undefined")
    v = np.random.default_rng(seed).normal(size=s.shape[0])
    v /= np.linalg.norm(v)
    lam, residual = 0.0, np.inf
    for it in range(1, max_iter + 1):
        w = s @ v
        lam = float(v @ w)
        residual = float(np.linalg.norm(w - lam * v) / lam) if lam > 0 else np.inf
        if residual < tol:
            return PowerResult(lam / trace, it, residual, True)
        v = w / np.linalg.norm(w)
    return PowerResult(lam / trace, max_iter, residual, False)
