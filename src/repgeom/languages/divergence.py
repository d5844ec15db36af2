"""Divergences between languages' representations: kNN KL estimator and the softmax-KL form."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import log_softmax

from repgeom.metrics.neighbors import knn


@dataclass(frozen=True)
class KnnKL:
    """A kNN KL estimate and what went into it."""

    value: float  # nats
    n: int  # distinct rows of x used
    m: int  # distinct rows of y used
    duplicates_x: int  # rows of x dropped as exact copies of another row of x
    duplicates_y: int  # rows of y dropped as exact copies of another row of y
    shared: int  # distinct rows of x that also occur in y


def _matrix(a: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty (n, d) matrix, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return a


def _distinct_rows(a: np.ndarray) -> tuple[np.ndarray, int]:
    u = np.ascontiguousarray(np.unique(a + 0.0, axis=0))  # + 0.0 turns -0.0 into 0.0
    return u, a.shape[0] - u.shape[0]


def knn_kl_report(x: np.ndarray, y: np.ndarray, k: int = 1, dim: float | None = None) -> KnnKL:
    """Wang–Kulkarni–Verdú (2009) kNN estimate of D(P‖Q) from samples x ~ P and y ~ Q.

    D ≈ (d/n) Σᵢ log(νₖ(i)/ρₖ(i)) + log(m/(n−1)), with ρₖ(i) the distance from xᵢ to its k-th
    nearest neighbour among the other rows of x and νₖ(i) the distance to its k-th nearest
    neighbour in y; d is the ambient dimension unless ``dim`` is given (the estimator assumes
    densities on R^d; data concentrated near a lower-dimensional set make the d-dimensional
    densities degenerate, and passing an intrinsic dimension as ``dim`` is a heuristic).

    Exact duplicates (a density has no atoms, so ties have probability zero and mean a repeated
    sample), handled so no distance is 0:

    1. exact duplicate rows within x, and within y, are collapsed to one row each (counted in
       ``duplicates_x`` / ``duplicates_y``);
    2. a row of x that also occurs in y is compared with y minus that row, just as ρ leaves xᵢ
       out of x, and its term uses m − 1 in place of m (counted in ``shared``). With this rule
       ``knn_kl(x, x)`` is exactly 0.
    """
    x = _matrix(x, "x")
    y = _matrix(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x {x.shape} and y {y.shape} must have the same number of columns")
    if not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    xu, dup_x = _distinct_rows(x)
    yu, dup_y = _distinct_rows(y)
    n, m = xu.shape[0], yu.shape[0]
    y_row = {row.tobytes(): j for j, row in enumerate(yu)}
    match = np.array([y_row.get(row.tobytes(), -1) for row in xu], dtype=np.int64)
    shared = np.flatnonzero(match >= 0)
    kk = k + 1 if shared.size else k
    if n < k + 1:
        raise ValueError(f"x has {n} distinct rows; k={k} needs at least {k + 1}")
    if m < kk:
        raise ValueError(f"y has {m} distinct rows; k={k} needs at least {kk} here")
    rho = knn(xu, None, k=k)[0][:, k - 1]
    dist, idx = knn(xu, yu, k=kk)
    nu = dist[:, k - 1].copy()
    for i in shared:
        nu[i] = dist[i][idx[i] != match[i]][k - 1]
    if (rho <= 0).any() or (nu <= 0).any():
        raise ValueError("a nearest-neighbour distance is 0 after removing duplicates")
    m_i = np.full(n, float(m))
    m_i[shared] -= 1.0
    d = float(x.shape[1] if dim is None else dim)
    value = d * np.mean(np.log(nu) - np.log(rho)) + np.mean(np.log(m_i / (n - 1)))
    return KnnKL(float(value), n, m, int(dup_x), int(dup_y), int(shared.size))


def knn_kl(x: np.ndarray, y: np.ndarray, k: int = 1, dim: float | None = None) -> float:
    """kNN estimate of D(P‖Q) in nats; see :func:`knn_kl_report` for the estimator and ties."""
    return knn_kl_report(x, y, k=k, dim=dim).value


def softmax_kl(x: np.ndarray, y: np.ndarray) -> float:
    """Mean over aligned pairs of KL(softmax(xᵢ) ‖ softmax(yᵢ)), in nats.

    Each vector is turned into a probability distribution over the hidden dimensions by a
    softmax (log-softmax in float64), and KL(pᵢ‖qᵢ) = Σⱼ pᵢⱼ (log pᵢⱼ − log qᵢⱼ) is averaged
    over i. This is the per-language study's form.

    What it measures: how differently two aligned vectors (the same sentence in two languages)
    spread their mass over the coordinates after a softmax. What it does not: it is not a
    divergence between the distributions of sentence vectors (see :func:`knn_kl`); it needs
    the rows to be paired; it depends on the basis and the scale of the hidden dimensions (a
    rotation or rescaling of the space changes it, adding a constant to a vector does not), and
    a few large coordinates (massive activations) dominate it.
    """
    x = _matrix(x, "x")
    y = _matrix(y, "y")
    if x.shape != y.shape:
        raise ValueError(f"x {x.shape} and y {y.shape} must be aligned pairs of the same shape")
    lp = log_softmax(x, axis=1)
    lq = log_softmax(y, axis=1)
    kl = np.sum(np.exp(lp) * (lp - lq), axis=1)
    return float(np.mean(kl))
