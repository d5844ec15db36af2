"""Counting the n-grams of token windows into the empirical next-token matrix P.

Definitions (Godey et al. 2024, §5.2):

- From token windows (sequence, position), every 5-gram (t₁ … t₅) lying inside one window (never
  across a window boundary, never into padding) is counted. Its context is c = (t₁ … t₄) and its
  next token is t₅.
- Contexts seen fewer than ``min_count`` times are dropped; the C kept contexts (sorted
  lexicographically) index the rows of P ∈ ℝ^{C×V} (float64, ``scipy.sparse.csr_array``), whose
  row c is the empirical next-token distribution P[c, v] = count(c, v) / count(c).

Its singular values and W-error are in :mod:`repgeom.bottleneck.ngram_svd`, the memory counting
needs in :mod:`repgeom.bottleneck.memory`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse

INT64_MAX = np.iinfo(np.int64).max


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


def counting_windows(
    windows: Any, vocab_size: int, n: int, min_count: int, lengths: Any | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`check_windows` for counting ``n``-grams seen ``min_count`` times: ValueError for
    such n or min_count, windows shorter than n and token ids outside the vocabulary."""
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
    return w, lens


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
    w, lens = counting_windows(windows, vocab_size, n, min_count, lengths)
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
