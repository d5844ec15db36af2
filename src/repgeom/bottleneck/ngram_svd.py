"""Singular values of the n-gram next-token matrix P and its W-error curve.

Definitions (Godey et al. 2024, §5.2; P as in :mod:`repgeom.bottleneck.ngram_counts`):

- With σ₁ ≥ σ₂ ≥ … the singular values of P, the best rank-d approximation error relative to P
  (Eckart–Young) is the W-error
  W-error(d) = ‖P − P_d‖_F / ‖P‖_F = sqrt(max(0, ‖P‖_F² − Σ_{i≤d} σᵢ²)) / ‖P‖_F,
  which is 1 at d = 0, non-increasing in d and 0 for d ≥ rank(P). It estimates the rank an LM head
  needs to represent the 5-gram next-token distributions of the corpus.
- ‖P‖_F² is summed exactly (``math.fsum``) from the non-zeros. The residual is evaluated as
  (‖P‖_F² − Σ_{i≤k} σᵢ²) + Σ_{d<i≤k} σᵢ² — the same quantity without cancelling the known tail —
  and on the dense route (all min(C, V) singular values known) the first term is the exact tail
  sum Σ_{i>k} σᵢ². On the sparse route it carries rounding of about k·ε·σ₁², so W-errors below
  ~1e-7 are at the rounding level there.

Singular values: the k largest, by ``scipy.sparse.linalg.svds(P, k, solver="propack",
return_singular_vectors=False)`` on a LinearOperator that multiplies by P and Pᵀ without copying
P. PROPACK runs in LM mode without restarts, so it needs a Lanczos basis of kmax > k vectors
(scipy's default 10·k); Lanczos bases of 3·k, 6·k, then 10·k are tried in turn (or the given
kmax only), each after a memory check, because the smaller ones usually converge and cost a
third of the memory and time. scipy's svds rejects k > min(C, V) for PROPACK (and k ≥ min(C, V)
for the other solvers); here k is clamped to min(C, V) and the dense route is taken when
k ≥ min(C, V) − 1 or when P is small (C·V ≤ ``dense_max_elements``): ``scipy.linalg.svdvals``
of the dense float64 P, all values.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg

from repgeom.bottleneck.memory import (
    DENSE_MAX_ELEMENTS,
    check_ngram_memory,
    kmax_ladder,
    matrix_bytes,
    propack_bytes,
    svd_route,
)


def top_singular_values(
    p: scipy.sparse.sparray | scipy.sparse.spmatrix,
    k: int,
    method: Literal["auto", "dense", "propack"] = "auto",
    kmax: int | None = None,
    seed: int = 0,
    dense_max_elements: int = DENSE_MAX_ELEMENTS,
    memory_budget: int | None = None,
) -> tuple[np.ndarray, str, int]:
    """The k largest singular values of P (descending, float64), the route and the PROPACK
    Lanczos basis size that converged (0 on the dense route).

    k is clamped to min(C, V); the dense route returns all min(C, V) values of the dense P. On
    the PROPACK route (LM mode, no restarts) the Lanczos basis sizes of :func:`kmax_ladder` are
    tried in turn until the k values converge; before each try the memory of P plus
    :func:`propack_bytes` (both in :mod:`repgeom.bottleneck.memory`) is checked against
    ``memory_budget`` (default: available RAM).
    """
    c, v = p.shape
    k = min(int(k), c, v)
    if k < 1:
        raise ValueError(f"k must be ≥ 1, got {k}")
    route = svd_route(k, c, v, dense_max_elements) if method == "auto" else method
    if route == "dense":
        s = scipy.linalg.svdvals(p.toarray(), overwrite_a=True, check_finite=False)
        return s, "dense", 0
    if route != "propack":
        raise ValueError(f"method must be 'auto', 'dense' or 'propack', got {method!r}")
    if k > min(c, v) - 1:
        raise ValueError(f"the propack route needs k ≤ min(C, V) − 1 = {min(c, v) - 1}")
    pt = p.T  # csc view of the same buffers: no copy

    op = scipy.sparse.linalg.LinearOperator(
        shape=p.shape,
        dtype=np.float64,
        matvec=lambda x: p @ x,
        rmatvec=lambda x: pt @ x,
        matmat=lambda x: p @ x,
        rmatmat=lambda x: pt @ x,
    )
    failure = ""
    for size in kmax_ladder(k, c, v, kmax):
        est = {
            "n_grams": 0,
            "n_contexts": c,
            "nnz": int(p.nnz),
            "counting": 0,
            "matrix": matrix_bytes(c, v, int(p.nnz)),
            "svd": propack_bytes(k, c, v, size),
        }
        check_ngram_memory(est, memory_budget, stage="svd")
        try:
            s = scipy.sparse.linalg.svds(
                op,
                k=k,
                solver="propack",
                return_singular_vectors=False,
                maxiter=size,
                rng=np.random.default_rng(seed),
            )
        except np.linalg.LinAlgError as err:  # not converged within this basis size
            failure = str(err)  # keep the text only: the traceback would pin the workspace
            continue
        return np.sort(np.asarray(s, dtype=np.float64))[::-1], "propack", size
    if c * v <= 64 * dense_max_elements:
        # PROPACK fails when rank(P) < k (an invariant subspace, or no convergence); a dense
        # SVD of a P this small (≤ 512 MB) is exact either way
        s = scipy.linalg.svdvals(p.toarray(), overwrite_a=True, check_finite=False)
        return s, "dense", 0
    raise np.linalg.LinAlgError(
        f"PROPACK did not converge for k={k} with Lanczos basis sizes "
        f"{kmax_ladder(k, c, v, kmax)}: {failure}; pass a larger kmax or lower k"
    )


def frobenius_norm(p: scipy.sparse.sparray | scipy.sparse.spmatrix) -> float:
    """‖P‖_F from the stored non-zeros, squares summed exactly with math.fsum."""
    data = np.asarray(p.data, dtype=np.float64)
    return math.sqrt(math.fsum((data * data).tolist()))


def residual_beyond(sigma: np.ndarray, fro_sq: float) -> float:
    """‖P‖_F² − Σᵢ σᵢ² over the computed σ, clamped at 0 (the energy beyond the k-th value)."""
    s2 = np.asarray(sigma, dtype=np.float64) ** 2
    return max(0.0, fro_sq - math.fsum(s2.tolist()))


def werror_curve(sigma: np.ndarray, fro: float, beyond: float) -> np.ndarray:
    """W-error(d) for d = 0 … k: sqrt(Σ_{d<i≤k} σᵢ² + beyond) / ‖P‖_F (see module doc)."""
    if not fro > 0:
        raise ValueError("‖P‖_F is zero; the W-error is undefined")
    s2 = np.asarray(sigma, dtype=np.float64) ** 2
    tail = np.concatenate([np.cumsum(s2[::-1])[::-1], [0.0]])
    return np.sqrt(tail + beyond) / fro
