"""5-gram rank estimates of the ideal LM head: W-error of the empirical next-token matrix.

Definitions (Godey et al. 2024, §5.2):

- From token windows (sequence, position), every 5-gram (t₁ … t₅) lying inside one window (never
  across a window boundary, never into padding) is counted. Its context is c = (t₁ … t₄) and its
  next token is t₅.
- Contexts seen fewer than ``min_count`` times are dropped; the C kept contexts (sorted
  lexicographically) index the rows of P ∈ ℝ^{C×V} (float64, ``scipy.sparse.csr_array``), whose
  row c is the empirical next-token distribution P[c, v] = count(c, v) / count(c).
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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg
import xarray as xr

from repgeom.runtime import available_memory, format_bytes

INT64_MAX = np.iinfo(np.int64).max
# Peak bytes per counted n-gram of ngram_counts (int64 context keys, their sort permutation and
# sorted copy, run starts and counts, pair keys and their np.unique, the csr P and the kept
# contexts), measured with tracemalloc on Zipf-distributed tokens: 65 bytes at min_count=1 with
# every context distinct (the worst case), 36–58 with min_count=2 or padded windows. 72 leaves
# a 10% margin.
COUNT_BYTES_PER_GRAM = 72
DENSE_MAX_ELEMENTS = 1_000_000
# Lanczos basis sizes tried in turn (multiples of k) when kmax is not given; scipy's default
# is the last one. Smaller bases are faster and lighter and converge for most n-gram matrices.
KMAX_FACTORS = (3, 6, 10)


@dataclass
class NgramCounts:
    """Kept contexts (C, n−1) in the windows' dtype, their counts, P (C, V) and totals."""

    contexts: np.ndarray
    context_counts: np.ndarray
    matrix: scipy.sparse.csr_array
    n_grams: int
    n_contexts_seen: int
    min_count: int
    order: int

    @property
    def vocab_size(self) -> int:
        return int(self.matrix.shape[1])


def check_windows(
    windows: Any, vocab_size: int, lengths: Any | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Validated (S, L) integer windows (no copy when possible) and optional valid lengths."""
    w = np.asarray(windows)
    if w.ndim != 2:
        raise ValueError(f"windows must be a (sequence, position) array, got shape {w.shape}")
    if not np.issubdtype(w.dtype, np.integer):
        raise ValueError(f"windows must hold integer token ids, got dtype {w.dtype}")
    if w.size == 0:
        raise ValueError(f"windows are empty (shape {w.shape})")
    if vocab_size < 1:
        raise ValueError(f"vocab_size must be ≥ 1, got {vocab_size}")
    lens = None
    if lengths is not None:
        lens = np.asarray(lengths)
        if lens.shape != (w.shape[0],) or not np.issubdtype(lens.dtype, np.integer):
            raise ValueError(f"lengths must be ({w.shape[0]},) integers, got {lens.shape}")
        if (lens < 0).any() or (lens > w.shape[1]).any():
            raise ValueError(f"lengths must lie in [0, {w.shape[1]}]")
    return w, lens


def encode_rows(columns: Sequence[Any], base: int) -> np.ndarray:
    """Order-preserving int64 keys of rows (c₀, …, c_m) with entries in [0, base).

    ``columns`` holds 1-D arrays or zero-argument callables returning them (so only one column
    is materialised at a time). Horner encoding key·base + c while it fits in int64; when it
    would overflow, the keys so far are first replaced by their dense ranks (``np.unique``
    inverse), which keeps equality and lexicographic order. Equal rows get equal keys and key
    order is row order.
    """

    def get(c: Any) -> np.ndarray:
        return c() if callable(c) else c

    key = np.array(get(columns[0]), dtype=np.int64)
    bound = base  # keys lie in [0, bound)
    for col in columns[1:]:
        if bound > (INT64_MAX - base) // base:
            _, key = np.unique(key, return_inverse=True)
            key = key.astype(np.int64, copy=False)
            bound = int(key.max()) + 1
            if bound > (INT64_MAX - base) // base:
                raise OverflowError("too many distinct rows to encode in int64")
        key *= base
        key += get(col)
        bound *= base
    return key


class _Grams:
    """Column j of every n-gram that lies inside a window (and its valid part), flattened."""

    def __init__(self, w: np.ndarray, n: int, lengths: np.ndarray | None) -> None:
        self.w, self.n = w, n
        self.starts = w.shape[1] - n + 1
        self.valid: np.ndarray | None = None
        if lengths is not None:
            valid = (np.arange(self.starts)[None, :] + n <= lengths[:, None]).reshape(-1)
            self.valid = None if valid.all() else np.flatnonzero(valid)
        self.count = w.shape[0] * self.starts if self.valid is None else len(self.valid)

    def column(self, j: int) -> np.ndarray:
        col = self.w[:, j : j + self.starts].reshape(-1)
        return col if self.valid is None else col[self.valid]

    def tokens_at(self, j: int, grams: np.ndarray) -> np.ndarray:
        """Token j of the given n-grams (indices into the flattened valid n-grams)."""
        g = grams if self.valid is None else self.valid[grams]
        return self.w[g // self.starts, g % self.starts + j]


def ngram_counts(
    windows: Any,
    vocab_size: int,
    n: int = 5,
    min_count: int = 1,
    lengths: Any | None = None,
) -> NgramCounts:
    """Count n-grams inside each window and build the next-token matrix P (see module doc).

    Vectorised: contexts are encoded as order-preserving int64 keys (:func:`encode_rows`) and
    sorted once; runs of equal keys give the contexts and their counts; (context row, next
    token) pairs are encoded as row·V + token and counted with ``np.unique``.
    """
    if n < 2:
        raise ValueError(f"n must be ≥ 2 (a context and a next token), got {n}")
    if min_count < 1:
        raise ValueError(f"min_count must be ≥ 1, got {min_count}")
    w, lens = check_windows(windows, vocab_size, lengths)
    if w.shape[1] < n:
        raise ValueError(f"windows of length {w.shape[1]} hold no {n}-gram; use longer windows")
    lo, hi = int(w.min()), int(w.max())
    if lo < 0 or hi >= vocab_size:
        raise ValueError(f"token ids must lie in [0, {vocab_size}), got range [{lo}, {hi}]")
    v = int(vocab_size)
    grams = _Grams(w, n, lens)
    if grams.count == 0:
        raise ValueError(f"no {n}-gram fits in the valid part of any window")
    key = encode_rows([lambda j=j: grams.column(j) for j in range(n - 1)], v)
    perm = np.argsort(key)
    key = key[perm]  # sorted context keys
    starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
    del key
    counts = np.diff(np.append(starts, grams.count))
    n_seen = len(counts)
    keep = counts >= min_count
    c = int(keep.sum())
    if c == 0:
        raise ValueError(
            f"no {n - 1}-token context occurs ≥ min_count={min_count} times; lower min_count "
            "or count more tokens"
        )
    first = perm[starts[keep]]  # one occurrence of each kept context
    contexts = np.stack([grams.tokens_at(j, first) for j in range(n - 1)], axis=1)
    del first
    # context row of each sorted n-gram (−1 for dropped contexts), then keys row·V + next token
    pair = np.repeat(np.where(keep, np.cumsum(keep) - 1, -1), counts)
    del starts
    kept = pair >= 0
    if c < len(counts):
        pair = pair[kept]
        perm = perm[kept]
    del kept
    pair *= v
    pair += grams.column(n - 1)[perm]
    del perm
    pairs, pair_counts = np.unique(pair, return_counts=True)
    del pair
    rows, tok = np.divmod(pairs, v)
    del pairs
    idx_dtype = np.int32 if max(len(tok), v) < np.iinfo(np.int32).max else np.int64
    tok = tok.astype(idx_dtype)
    ctx_counts = counts[keep]
    del counts, keep
    data = pair_counts / ctx_counts[rows]
    del pair_counts
    indptr = np.zeros(c + 1, dtype=idx_dtype)
    np.cumsum(np.bincount(rows, minlength=c), out=indptr[1:])
    del rows
    matrix = scipy.sparse.csr_array((data, tok, indptr), shape=(c, v))
    return NgramCounts(
        contexts=contexts,
        context_counts=ctx_counts.astype(np.int64),
        matrix=matrix,
        n_grams=int(grams.count),
        n_contexts_seen=n_seen,
        min_count=int(min_count),
        order=n,
    )


# --- memory ---------------------------------------------------------------------------------


def propack_kmax(k: int, n_contexts: int, vocab_size: int, kmax: int | None = None) -> int:
    """Lanczos basis size PROPACK uses: kmax (default 3·k, the first try) capped at min(C, V)+1."""
    return min(n_contexts + 1, vocab_size + 1, KMAX_FACTORS[0] * k if kmax is None else kmax)


def kmax_ladder(k: int, n_contexts: int, vocab_size: int, kmax: int | None = None) -> list[int]:
    """Basis sizes tried in turn: [kmax] when given, else 3k, 6k, 10k (capped, deduplicated)."""
    sizes = [kmax] if kmax is not None else [f * k for f in KMAX_FACTORS]
    return sorted({propack_kmax(k, n_contexts, vocab_size, x) for x in sizes})


def propack_bytes(k: int, n_contexts: int, vocab_size: int, kmax: int | None = None) -> int:
    """Bytes scipy's PROPACK wrapper allocates for singular values only (float64, m=C, n=V).

    From ``scipy/sparse/linalg/_svdp.py``: the Lanczos bases u (m, kmax+1) and v (n, kmax) are
    allocated even when no singular vectors are asked for, plus the work array of
    lwork = m + n + 9·kmax + 2·kmax² + 4 + max(m + n, 4·kmax + 4) doubles, 2·kmax + 2 int32 and
    two length-m/n matvec vectors. Total ≈ 8·[(C + V)·kmax + 2·kmax² + 3(C + V)] bytes.
    """
    m, n = n_contexts, vocab_size
    kx = propack_kmax(k, m, n, kmax)
    lwork = m + n + 9 * kx + 2 * kx**2 + 4 + max(m + n, 4 * kx + 4)
    return 8 * (m * (kx + 1) + n * kx + lwork + m + n) + 4 * (2 * kx + 2)


def matrix_bytes(n_contexts: int, vocab_size: int, nnz: int) -> int:
    """Bytes of the csr P: float64 data, int32 (int64 when large) indices and row pointers."""
    idx = 4 if max(nnz, vocab_size) < np.iinfo(np.int32).max else 8
    return nnz * (8 + idx) + (n_contexts + 1) * idx


def memory_estimate(
    n_windows: int,
    window_length: int,
    vocab_size: int,
    k: int,
    min_count: int = 1,
    n: int = 5,
    n_contexts: int | None = None,
    nnz: int | None = None,
    kmax: int | None = None,
    method: Literal["auto", "dense", "propack"] = "auto",
    dense_max_elements: int = DENSE_MAX_ELEMENTS,
) -> dict[str, int]:
    """Peak-memory estimate (bytes) of :func:`wrank_estimate`, stage by stage.

    - counting: COUNT_BYTES_PER_GRAM · N, N = n_windows · (window_length − n + 1) n-grams (the
      windows array itself, owned by the caller, is not counted);
    - matrix: the csr P, :func:`matrix_bytes`; without measured C and nnz, the upper bounds
      C ≤ min(N / min_count, V^(n−1)) and nnz ≤ min(N, C·V) are used;
    - svd: :func:`propack_bytes` on the sparse route for the first Lanczos basis size (3·k, or
      ``kmax``; a retry with a larger basis is checked again before it allocates), 2 · 8·C·V
      (dense copy + LAPACK's) on the dense route (see :func:`svd_route`);
    - peak = max(counting, matrix + svd): the counting temporaries are freed before the SVD.
    """
    n_grams = int(n_windows) * max(0, int(window_length) - n + 1)
    c = n_contexts
    if c is None:
        c = min(n_grams // max(1, min_count), vocab_size ** (n - 1))
    z = nnz if nnz is not None else min(n_grams, c * vocab_size)
    kk = min(k, c, vocab_size)
    if kk < 1:
        svd = 0
    elif (
        method if method != "auto" else svd_route(kk, c, vocab_size, dense_max_elements)
    ) == "dense":
        svd = 2 * 8 * c * vocab_size
    else:
        svd = propack_bytes(kk, c, vocab_size, kmax)
    counting = COUNT_BYTES_PER_GRAM * n_grams
    matrix = matrix_bytes(c, vocab_size, z)
    return {
        "n_grams": n_grams,
        "n_contexts": c,
        "nnz": z,
        "counting": counting,
        "matrix": matrix,
        "svd": svd,
        "peak": max(counting, matrix + svd),
    }


def check_memory(estimate: dict[str, int], budget: int | None = None, stage: str = "all") -> None:
    """Raise MemoryError, naming what to lower, when a stage's estimate exceeds the budget.

    ``stage`` is "counting", "svd" (matrix + svd) or "all". Budget defaults to available RAM.
    """
    budget = available_memory() if budget is None else int(budget)
    if stage in ("counting", "all") and estimate["counting"] > budget:
        raise MemoryError(
            f"counting {estimate['n_grams']:,} n-grams needs ~{format_bytes(estimate['counting'])}"
            f" but only {format_bytes(budget)} are allowed; lower max_tokens (the token "
            "budget: fewer windows)"
        )
    need = estimate["matrix"] + estimate["svd"]
    if stage in ("svd", "all") and need > budget:
        raise MemoryError(
            f"the SVD stage (P: {estimate['n_contexts']:,} contexts × V, nnz "
            f"{estimate['nnz']:,}: {format_bytes(estimate['matrix'])}; singular values: "
            f"{format_bytes(estimate['svd'])}) needs ~{format_bytes(need)} but only "
            f"{format_bytes(budget)} are allowed; lower k (or kmax, the Lanczos basis size), "
            "raise min_count (fewer contexts) or lower max_tokens (the token budget)"
        )


# --- singular values and W-error ------------------------------------------------------------


def svd_route(
    k: int, n_contexts: int, vocab_size: int, dense_max_elements: int = DENSE_MAX_ELEMENTS
) -> Literal["dense", "propack"]:
    """'dense' when k ≥ min(C, V) − 1 or C·V ≤ dense_max_elements, else 'propack'."""
    small = min(n_contexts, vocab_size)
    if k >= small - 1 or n_contexts * vocab_size <= dense_max_elements:
        return "dense"
    return "propack"


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
    :func:`propack_bytes` is checked against ``memory_budget`` (default: available RAM).
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
        check_memory(est, memory_budget, stage="svd")
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


def default_d_grid(k: int) -> list[int]:
    """0, then powers of two below k, then k."""
    return sorted({0, k, *(2**i for i in range(int(math.log2(k)) + 1) if k >= 1 and 2**i <= k)})


def wrank_estimate(
    windows: Any,
    vocab_size: int,
    k: int = 1000,
    min_count: int = 1,
    n: int = 5,
    lengths: Any | None = None,
    max_tokens: int | None = None,
    d_grid: Sequence[int] | None = None,
    method: Literal["auto", "dense", "propack"] = "auto",
    kmax: int | None = None,
    memory_budget: int | None = None,
    seed: int = 0,
    attrs: dict[str, Any] | None = None,
) -> xr.Dataset:
    """W-error of the n-gram next-token matrix of ``windows`` on a grid of ranks d ≤ k.

    ``max_tokens`` (the token budget) keeps the first ⌊max_tokens / L⌋ windows. Memory is checked
    before counting (counting stage) and again before the SVD with the measured C and nnz;
    MemoryError names what to lower. Returns a Dataset with ``werror`` (rank), ``sigma`` (index),
    ``frobenius_norm`` and attrs C, V, nnz, k, min_count.
    """
    w = np.asarray(windows) if not hasattr(windows, "shape") else windows
    if len(w.shape) != 2:
        raise ValueError(f"windows must be a (sequence, position) array, got shape {w.shape}")
    if max_tokens is not None:
        if max_tokens < w.shape[1]:
            raise ValueError(
                f"max_tokens={max_tokens} is below one window ({w.shape[1]} tokens); raise it"
            )
        keep = min(w.shape[0], max_tokens // w.shape[1])
        w = w[:keep]
        lengths = None if lengths is None else np.asarray(lengths)[:keep]
    if k < 1:
        raise ValueError(f"k must be ≥ 1, got {k}")
    shape = (w.shape[0], w.shape[1], vocab_size, k, min_count, n)
    est = memory_estimate(*shape, kmax=kmax, method=method)
    check_memory(est, memory_budget, stage="counting")
    counts = ngram_counts(w, vocab_size, n, min_count, lengths)
    p = counts.matrix
    n_grams, n_seen = counts.n_grams, counts.n_contexts_seen
    del counts  # only P stays alive during the SVD
    c, v = p.shape
    est = memory_estimate(*shape, n_contexts=c, nnz=p.nnz, kmax=kmax, method=method)
    check_memory(est, memory_budget, stage="svd")
    ds = matrix_werror(p, k, d_grid, method, kmax, memory_budget, seed)
    if ds.attrs["lanczos_kmax"]:  # the estimate for the basis size that converged
        est = memory_estimate(
            *shape, n_contexts=c, nnz=p.nnz, kmax=ds.attrs["lanczos_kmax"], method=method
        )
    ds.attrs.update(
        {
            "min_count": int(min_count),
            "order": int(n),
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
