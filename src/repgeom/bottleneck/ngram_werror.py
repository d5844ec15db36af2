"""5-gram rank estimates of the ideal LM head: W-error datasets (Godey et al. 2024, §5.2).

:func:`wrank_estimate` counts the n-grams of token windows into the next-token matrix P
(:mod:`repgeom.bottleneck.ngram_counts`), checks memory before each stage
(:mod:`repgeom.bottleneck.memory`) and computes the W-error of P on a grid of ranks
(:mod:`repgeom.bottleneck.ngram_svd`, which defines it); :func:`matrix_werror` is that last step
for any matrix; :func:`werror_thresholds` reads off the ranks where the W-error falls below
given levels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import scipy.sparse
import xarray as xr

from repgeom.bottleneck.memory import check_ngram_memory
from repgeom.bottleneck.ngram_counts import ngram_counts
from repgeom.bottleneck.ngram_svd import (
    frobenius_norm,
    residual_beyond,
    top_singular_values,
    werror_curve,
)
from repgeom.bottleneck.options import NgramOptions


def default_d_grid(k: int) -> list[int]:
    """0, then powers of two below k, then k."""
    return sorted({0, k, *(2**i for i in range(int(math.log2(k)) + 1) if k >= 1 and 2**i <= k)})


def wrank_estimate(
    windows: Any,
    vocab_size: int,
    options: NgramOptions,
    lengths: Any | None = None,
    memory_budget: int | None = None,
    attrs: dict[str, Any] | None = None,
    d_grid: Sequence[int] | None = None,
    kmax: int | None = None,
) -> xr.Dataset:
    """W-error of the ``options.n``-gram next-token matrix of ``windows`` on a grid of ranks
    d ≤ ``options.k``.

    The token budget ``options.max_tokens`` keeps the first ⌊max_tokens / L⌋ windows
    (:meth:`NgramOptions.windows_kept`). Memory is checked before counting (counting stage) and
    again before the SVD with the measured C and nnz; MemoryError names what to lower. Returns a
    Dataset with ``werror`` (rank), ``sigma`` (index), ``frobenius_norm`` and attrs C, V, nnz,
    k, min_count.
    """
    o = options
    w = np.asarray(windows) if not hasattr(windows, "shape") else windows
    if len(w.shape) != 2:
        raise ValueError(f"windows must be a (sequence, position) array, got shape {w.shape}")
    if o.max_tokens is not None:
        if o.max_tokens < w.shape[1]:
            raise ValueError(
                f"max_tokens={o.max_tokens} is below one window ({w.shape[1]} tokens); raise it"
            )
        keep = o.windows_kept(w.shape[0], w.shape[1])
        w = w[:keep]
        lengths = None if lengths is None else np.asarray(lengths)[:keep]
    shape = (w.shape[0], w.shape[1], vocab_size)
    est = o.memory_estimate(*shape, kmax=kmax)
    check_ngram_memory(est, memory_budget, stage="counting")
    counts = ngram_counts(w, vocab_size, o.n, o.min_count, lengths)
    p = counts.matrix
    n_grams, n_seen = counts.n_grams, counts.n_contexts_seen
    del counts  # only P stays alive during the SVD
    c, v = p.shape
    est = o.memory_estimate(*shape, n_contexts=c, nnz=p.nnz, kmax=kmax)
    check_ngram_memory(est, memory_budget, stage="svd")
    ds = matrix_werror(p, o.k, d_grid, o.method, kmax, memory_budget, o.seed)
    if ds.attrs["lanczos_kmax"]:  # the estimate for the basis size that converged
        est = o.memory_estimate(*shape, n_contexts=c, nnz=p.nnz, kmax=ds.attrs["lanczos_kmax"])
    ds.attrs.update(
        {
            "min_count": int(o.min_count),
            "order": int(o.n),
            "n_grams": n_grams,
            "n_contexts_seen": n_seen,
            "n_windows": int(w.shape[0]),
            "window_length": int(w.shape[1]),
            "estimated_peak_bytes": int(est["peak"]),
            **(attrs or {}),
        }
    )
    return ds


def matrix_werror(
    p: scipy.sparse.sparray | scipy.sparse.spmatrix,
    k: int,
    d_grid: Sequence[int] | None = None,
    method: Literal["auto", "dense", "propack"] = "auto",
    kmax: int | None = None,
    memory_budget: int | None = None,
    seed: int = 0,
) -> xr.Dataset:
    """W-error of a (C, V) matrix P on a grid of ranks d ≤ k (k clamped to min(C, V)).

    Variables: ``werror`` (rank), ``sigma`` (index, the k leading values), ``frobenius_norm``
    and ``residual_beyond_k``; attrs n_contexts (C), vocab_size (V), nnz, k, svd_route and
    lanczos_kmax (the PROPACK basis size that converged, 0 on the dense route).
    """
    if k < 1:
        raise ValueError(f"k must be ≥ 1, got {k}")
    p = scipy.sparse.csr_array(p, dtype=np.float64)
    if p.nnz and not np.isfinite(p.data).all():
        raise ValueError("P holds NaN or infinite values")
    c, v = p.shape
    k_used = min(k, c, v)
    sigma, route, kmax_used = top_singular_values(
        p, k_used, method, kmax, seed, memory_budget=memory_budget
    )
    fro = frobenius_norm(p)
    if route == "dense":  # all min(C, V) values: the energy beyond k is their exact tail sum
        beyond = math.fsum((sigma[k_used:] ** 2).tolist())
        sigma = sigma[:k_used]
    else:
        beyond = residual_beyond(sigma, fro * fro)
    curve = werror_curve(sigma, fro, beyond)  # d = 0 … k
    grid = default_d_grid(k_used) if d_grid is None else sorted({int(d) for d in d_grid})
    bad = [d for d in grid if not 0 <= d <= k_used]
    if bad:
        raise ValueError(f"d_grid values must lie in [0, {k_used}] (k after clamping), got {bad}")
    return xr.Dataset(
        {
            "werror": (
                "rank",
                curve[grid],
                {
                    "long_name": "W-error ‖P − P_d‖_F / ‖P‖_F of the best rank-d approximation",
                    "units": "1",
                },
            ),
            "sigma": (
                "index",
                sigma,
                {"long_name": "singular value of the n-gram next-token matrix P", "units": "1"},
            ),
            "frobenius_norm": (
                (),
                fro,
                {"long_name": "Frobenius norm of P", "units": "1"},
            ),
            "residual_beyond_k": (
                (),
                beyond,
                {
                    "long_name": "energy of P beyond the k leading singular values "
                    "‖P‖_F² − Σ_{i≤k} σᵢ²",
                    "units": "1",
                },
            ),
        },
        coords={
            "rank": ("rank", np.array(grid), {"long_name": "approximation rank d", "units": "1"}),
            "index": (
                "index",
                np.arange(1, len(sigma) + 1),
                {"long_name": "singular value index (1 = largest)", "units": "1"},
            ),
        },
        attrs={
            "n_contexts": c,
            "vocab_size": v,
            "nnz": int(p.nnz),
            "k": int(k_used),
            "k_requested": int(k),
            "svd_route": route,
            "lanczos_kmax": int(kmax_used),
        },
    )


def werror_thresholds(
    ds: xr.Dataset, thresholds: Sequence[float] = (0.5, 0.2, 0.1)
) -> dict[float, int | str]:
    """Smallest d with W-error(d) < t for each threshold t, over every d = 0 … k (not only the
    grid), from ``sigma``, ``frobenius_norm`` and ``residual_beyond_k``; ``"> k"`` (k's value,
    e.g. "> 1000") when W-error(k) ≥ t."""
    curve = werror_curve(
        ds["sigma"].values, float(ds["frobenius_norm"]), float(ds["residual_beyond_k"])
    )
    out: dict[float, int | str] = {}
    for t in thresholds:
        below = np.flatnonzero(curve < t)
        out[float(t)] = int(below[0]) if below.size else f"> {len(curve) - 1}"
    return out
