"""Peak-memory estimate of the rank-restricted heads, checked before anything is allocated.

Torch-free, so the workflow can check a config when it is parsed. The n-gram study's estimate
lives with its code (:func:`repgeom.bottleneck.ngram.memory_estimate`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from repgeom.runtime import available_memory, format_bytes


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
    shuffle_buffer: int = 65536,
    block_rows: int = 8192,
    init: str = "random",
    bias: bool = False,
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
