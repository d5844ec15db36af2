"""Typed options of the softmax-bottleneck study's jobs (torch- and scipy-free, so the planner
checks a config with the same methods a job runs).

- :class:`HeadTraining`: ``bottleneck.heads`` (the rank-restricted heads);
- :class:`NgramOptions`: ``bottleneck.ngram`` (the n-gram rank estimate).

Each is built with ``repgeom.options.build`` from its config section, which the workflow filled
with the schema's defaults (no field has a default here); the selection keys the planner reads
(models, steps, corpora, budgets) are left out (``extra=True``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from repgeom.bottleneck.memory import (
    BLOCK_ROWS,
    check_ranks,
    heads_memory_estimate,
    ngram_memory_estimate,
)


@dataclass(frozen=True)
class HeadTraining:
    """Optimisation settings shared by every head, and the rank grid: the config's
    ``bottleneck.heads`` (its defaults filled from the schema by the workflow; the other keys
    are the planner's)."""

    token_budget: int
    batch_size: int
    lr: float
    weight_decay: float
    schedule: Literal["cosine", "constant"]
    warmup_fraction: float
    shuffle_buffer: int
    init: Literal["random", "svd"]
    bias: bool
    seed: int
    betas: tuple[float, float]
    eps: float
    ranks: tuple[int, ...] | None

    def __post_init__(self) -> None:
        if self.token_budget < 1:
            raise ValueError(f"token_budget must be ≥ 1, got {self.token_budget}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be ≥ 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be ≥ 0, got {self.weight_decay}")
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"schedule must be 'cosine' or 'constant', got {self.schedule!r}")
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        if self.init not in ("random", "svd"):
            raise ValueError(f"init must be 'random' or 'svd', got {self.init!r}")
        if self.shuffle_buffer < 0:
            raise ValueError(f"shuffle_buffer must be ≥ 0, got {self.shuffle_buffer}")

    @property
    def n_updates(self) -> int:
        """Number of optimiser updates: ceil(token_budget / batch_size)."""
        return math.ceil(self.token_budget / self.batch_size)

    def lr_at(self, update: int) -> float:
        """Learning rate of a 0-based update index."""
        if self.schedule == "constant":
            return self.lr
        n = self.n_updates
        warm = int(self.warmup_fraction * n)
        if update < warm:
            return self.lr * (update + 1) / warm
        progress = (update - warm) / max(1, n - warm)
        return self.lr * 0.5 * (1.0 + math.cos(math.pi * progress))

    def ranks_for(self, vocab_size: int, hidden_size: int, model: str = "the model") -> list[int]:
        """The head ranks of a (V, d) head (:func:`~repgeom.bottleneck.memory.check_ranks`:
        ValueError naming ``bottleneck.heads.ranks`` and ``model`` for a rank out of range)."""
        return check_ranks(self.ranks, vocab_size, hidden_size, model)

    def memory_estimate(
        self,
        vocab_size: int,
        hidden_size: int,
        model: str = "the model",
        block_rows: int = BLOCK_ROWS,
    ) -> dict[str, int]:
        """Bytes of training these heads on a (V, d) head, part by part
        (:func:`~repgeom.bottleneck.memory.heads_memory_estimate`), its ranks checked first
        (:meth:`ranks_for`)."""
        return heads_memory_estimate(
            vocab_size,
            hidden_size,
            self.ranks_for(vocab_size, hidden_size, model),
            self.batch_size,
            self.token_budget,
            self.shuffle_buffer,
            self.init,
            self.bias,
            block_rows,
        )


@dataclass(frozen=True)
class NgramOptions:
    """The n-gram rank estimate of one (tokenizer, corpus): the config's ``bottleneck.ngram``
    (its defaults filled from the schema; corpora, tokenizers, thresholds and memory_mb are the
    planner's)."""

    k: int
    min_count: int
    max_tokens: int | None
    n: int
    method: Literal["auto", "dense", "propack"]
    seed: int

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"k must be ≥ 1, got {self.k}")
        if self.min_count < 1:
            raise ValueError(f"min_count must be ≥ 1, got {self.min_count}")
        if self.n < 2:
            raise ValueError(f"n must be ≥ 2 (a context and a next token), got {self.n}")
        if self.method not in ("auto", "dense", "propack"):
            raise ValueError(f"method must be auto, dense or propack, got {self.method!r}")

    def windows_kept(self, n_windows: int, window_length: int) -> int:
        """Windows of ``window_length`` tokens the token budget keeps of ``n_windows``: the
        first ⌊max_tokens / window_length⌋ (all without a budget)."""
        if self.max_tokens is None:
            return n_windows
        return min(n_windows, self.max_tokens // window_length)

    def memory_estimate(
        self,
        n_windows: int,
        window_length: int,
        vocab_size: int,
        n_contexts: int | None = None,
        nnz: int | None = None,
        kmax: int | None = None,
    ) -> dict[str, int]:
        """Peak-memory estimate of the estimate on ``n_windows`` windows, stage by stage
        (:func:`~repgeom.bottleneck.memory.ngram_memory_estimate`)."""
        return ngram_memory_estimate(
            n_windows,
            window_length,
            vocab_size,
            self.k,
            self.min_count,
            self.n,
            n_contexts=n_contexts,
            nnz=nnz,
            kmax=kmax,
            method=self.method,
        )
