"""Peak-memory estimates of the bottleneck study's jobs, checked before anything is allocated:
the rank-restricted heads, and the n-gram rank estimate stage by stage (with the SVD route and
the PROPACK Lanczos basis sizes they depend on).

Torch- and scipy-free, so the workflow can check a config when it is parsed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

from repgeom.runtime import available_memory, format_bytes

BLOCK_ROWS = 8192  # feature rows a heads job reads from a store at a time


def default_ranks(hidden_size: int) -> list[int]:
    """Powers of two 1, 2, 4, … up to the hidden size d (d itself only if a power of two)."""
    if hidden_size < 1:
        raise ValueError(f"hidden_size must be ≥ 1, got {hidden_size}")
    return [2**i for i in range(int(math.log2(hidden_size)) + 1)]


def check_ranks(
    ranks: Sequence[int] | None, vocab_size: int, hidden_size: int, model: str = "the model"
) -> list[int]:
    """The sorted distinct ranks of the heads (the powers of two up to d when None); ValueError
    naming the config key when one is not in [1, min(V, d)]."""
    if vocab_size < 2 or hidden_size < 1:
        raise ValueError(
            f"need vocab_size ≥ 2 and hidden_size ≥ 1, got {vocab_size}, {hidden_size}"
        )
    chosen = sorted(set(default_ranks(hidden_size) if ranks is None else (int(r) for r in ranks)))
    top = min(vocab_size, hidden_size)
    bad = [r for r in chosen if not 1 <= r <= top]
    if bad or not chosen:
        raise ValueError(
            f"config key 'bottleneck.heads.ranks': {bad or chosen} are not in [1, min(V, d)] = "
            f"[1, {top}] of {model} (V = {vocab_size}, d = {hidden_size})"
        )
    return chosen


def heads_memory_estimate(
    vocab_size: int,
    hidden_size: int,
    ranks: Sequence[int] | None,
    batch_size: int,
    token_budget: int,
    shuffle_buffer: int,
    init: str,
    bias: bool,
    block_rows: int = BLOCK_ROWS,
) -> dict[str, int]:
    """Bytes of :func:`repgeom.bottleneck.heads.rank_restricted_heads`, part by part.

    - params: every head (Σᵣ r(V + d) + V·d, plus V per head with a bias) held four times in
      float32 (value, gradient, AdamW's two moments);
    - logits: the (batch, V) float32 logits of one head at a time, with the log-softmax and
      their gradients (4 copies);
    - stream: the shuffle pool of max(shuffle_buffer, batch_size) rows plus one incoming block
      of ``block_rows``, features float32 and int64 targets, three copies (concatenation,
      permutation, leftover);
    - reference: the model's head as float64 (V·d) and float32 copies, and for init='svd' the
      float64 SVD factors and LAPACK's copy (3·V·d float64 more);
    - losses: one float64 per update and head.
    """
    v, d = int(vocab_size), int(hidden_size)
    if v < 1 or d < 1:
        raise ValueError(f"vocab_size and hidden_size must be ≥ 1, got {v}, {d}")
    grid = default_ranks(d) if ranks is None else [int(r) for r in ranks]
    n_heads = len(grid) + 1
    n_params = sum(r * (v + d) for r in grid) + v * d + (n_heads * v if bias else 0)
    fill = max(shuffle_buffer, batch_size) + block_rows
    n_updates = math.ceil(token_budget / batch_size)
    parts = {
        "params": 16 * n_params,
        "logits": 16 * batch_size * v,
        "stream": 3 * fill * (4 * d + 8),
        "reference": 12 * v * d + (24 * v * d if init == "svd" else 0),
        "losses": 8 * n_updates * n_heads,
    }
    parts["total"] = sum(parts.values())
    return parts


def check_heads_memory(
    estimate: dict[str, int], budget: int | None = None, extra: int = 0, what: str = "heads"
) -> None:
    """Raise MemoryError naming what to lower when estimate['total'] + extra exceeds the budget
    (default: the RAM available now)."""
    budget = available_memory() if budget is None else int(budget)
    need = estimate["total"] + int(extra)
    if need <= budget:
        return
    largest = max((k for k in estimate if k != "total"), key=lambda k: estimate[k])
    hints = {
        "params": "drop the largest ranks (ranks)",
        "logits": "lower batch_size (the logits are batch_size × V floats per head)",
        "stream": "lower shuffle_buffer",
        "reference": "use init: random (the SVD init holds three V × d float64 matrices)",
        "losses": "lower token_budget or raise batch_size (fewer updates)",
    }
    parts = ", ".join(
        f"{k} {format_bytes(estimate[k])}" for k in estimate if k != "total" and estimate[k]
    )
    raise MemoryError(
        f"the {what} need ~{format_bytes(need)} ({parts}"
        + (f", model {format_bytes(extra)}" if extra else "")
        + f") but only {format_bytes(budget)} are allowed; {hints[largest]}"
    )


# --- the n-gram rank estimate: SVD route, Lanczos basis sizes, memory per stage --------------

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


def svd_route(
    k: int, n_contexts: int, vocab_size: int, dense_max_elements: int = DENSE_MAX_ELEMENTS
) -> Literal["dense", "propack"]:
    """'dense' when k ≥ min(C, V) − 1 or C·V ≤ dense_max_elements, else 'propack'."""
    small = min(n_contexts, vocab_size)
    if k >= small - 1 or n_contexts * vocab_size <= dense_max_elements:
        return "dense"
    return "propack"


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


def ngram_memory_estimate(
    n_windows: int,
    window_length: int,
    vocab_size: int,
    k: int,
    min_count: int,
    n: int,
    n_contexts: int | None = None,
    nnz: int | None = None,
    kmax: int | None = None,
    method: Literal["auto", "dense", "propack"] = "auto",
    dense_max_elements: int = DENSE_MAX_ELEMENTS,
) -> dict[str, int]:
    """Peak-memory estimate (bytes) of :func:`repgeom.bottleneck.ngram_werror.wrank_estimate`,
    stage by stage.

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


def check_ngram_memory(
    estimate: dict[str, int], budget: int | None = None, stage: str = "all"
) -> None:
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
