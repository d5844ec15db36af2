"""Character-level bigram language with trigger tokens (the task of "Birth of a Transformer").

A sequence is generated from a bigram model over the N most frequent characters of a list of
documents, except that each of K *trigger* tokens is always followed by the same *output*
token, drawn once per sequence. Predicting an output from its second occurrence on requires
looking back in the context (an induction head); every other transition only needs the global
bigram table.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

import numpy as np

Split = Literal["train", "test", "ood"]
SPLIT_CODES: dict[str, int] = {"train": 0, "test": 1, "ood": 2}


@dataclass(frozen=True)
class BigramLanguage:
    """Vocabulary (ids ordered by decreasing frequency) with unigram and bigram distributions.

    ``bigram[i]`` is the distribution of the character following ``chars[i]`` inside a
    document; for a character never followed by an in-vocabulary character it is the unigram.
    """

    chars: str
    unigram: np.ndarray  # (V,) float64, sums to 1
    bigram: np.ndarray  # (V, V) float64, rows sum to 1
    unigram_counts: np.ndarray  # (V,) int64
    bigram_counts: np.ndarray  # (V, V) int64
    unigram_fallback_rows: np.ndarray  # (V,) bool: rows that fell back to the unigram

    @property
    def n_vocab(self) -> int:
        return len(self.chars)

    def most_frequent(self, k: int) -> np.ndarray:
        """Ids of the k most frequent characters (ids are frequency ranks)."""
        if not 0 < k <= self.n_vocab:
            raise ValueError(f"k={k} must be in [1, {self.n_vocab}]")
        return np.arange(k, dtype=np.int64)

    def encode(self, text: str) -> np.ndarray:
        """Ids of the in-vocabulary characters of ``text`` (others are dropped)."""
        index = {c: i for i, c in enumerate(self.chars)}
        return np.array([index[c] for c in text if c in index], dtype=np.int64)

    def decode(self, ids: np.ndarray) -> str:
        return "".join(self.chars[int(i)] for i in np.asarray(ids).ravel())


def make_language(documents: list[str], n_vocab: int = 65) -> BigramLanguage:
    """Bigram language over the ``n_vocab`` most frequent characters of ``documents``.

    Frequency ties are broken by code point. Bigrams are counted within each document between
    adjacent characters that are both in the vocabulary (a pair straddling an out-of-vocabulary
    character or a document boundary is not counted). A row with no counts falls back to the
    unigram distribution.
    """
    if isinstance(documents, str) or not documents:
        raise ValueError("documents must be a non-empty list of strings")
    if n_vocab < 2:
        raise ValueError(f"n_vocab={n_vocab} must be at least 2")
    counts: Counter[str] = Counter()
    for doc in documents:
        if not isinstance(doc, str):
            raise ValueError(f"documents must be strings, got {type(doc).__name__}")
        counts.update(doc)
    if len(counts) < n_vocab:
        raise ValueError(
            f"documents contain only {len(counts)} distinct characters but n_vocab={n_vocab}; "
            f"lower n_vocab to at most {len(counts)} or pass more text"
        )
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n_vocab]
    chars = "".join(c for c, _ in ranked)
    index = {c: i for i, c in enumerate(chars)}
    uni = np.array([n for _, n in ranked], dtype=np.int64)
    big = np.zeros((n_vocab, n_vocab), dtype=np.int64)
    for doc in documents:
        ids = np.array([index.get(c, -1) for c in doc], dtype=np.int64)
        if ids.size < 2:
            continue
        a, b = ids[:-1], ids[1:]
        ok = (a >= 0) & (b >= 0)
        np.add.at(big, (a[ok], b[ok]), 1)
    unigram = uni / uni.sum()
    row_tot = big.sum(axis=1)
    empty = row_tot == 0
    bigram = np.where(
        empty[:, None], unigram[None, :], big / np.maximum(row_tot, 1)[:, None]
    ).astype(np.float64)
    for arr in (unigram, bigram):
        arr.setflags(write=False)
    return BigramLanguage(chars, unigram, bigram, uni, big, empty)


def _exact_cdf(p: np.ndarray) -> np.ndarray:
    """Row-wise CDF whose entries from the last positive probability on are exactly 1.

    Sampling ``index = #{cdf <= u}`` with ``u ∈ [0, 1)`` then never returns a zero-probability
    index.
    """
    p = np.atleast_2d(np.asarray(p, dtype=np.float64))
    cdf = np.cumsum(p, axis=-1)
    last = p.shape[-1] - 1 - np.argmax((p > 0)[..., ::-1], axis=-1)
    cols = np.arange(p.shape[-1])
    cdf[cols[None, :] >= last[..., None]] = 1.0
    return cdf


def _sample_rows(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF sampling: one index per row of ``cdf`` (..., n) for uniforms ``u`` (...)."""
    return (cdf <= u[..., None]).sum(axis=-1).astype(np.int64)


def output_pools(n_vocab: int, ood_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Token ids that may be trigger outputs in training and in the out-of-distribution split.

    ``round(ood_fraction * n_vocab)`` ids evenly spread over the frequency ranks
    (``floor((i + 1/2) · V / n_ood)``) are held out: they are never outputs in training or in
    the in-distribution test split, and they are the only outputs of the OOD split.
    """
    if not 0.0 <= ood_fraction < 1.0:
        raise ValueError(f"ood_fraction={ood_fraction} must be in [0, 1)")
    n_ood = int(round(ood_fraction * n_vocab))
    if n_ood >= n_vocab:
        raise ValueError(f"ood_fraction={ood_fraction} leaves no training output tokens")
    ood = np.floor((np.arange(n_ood) + 0.5) * n_vocab / max(n_ood, 1)).astype(np.int64)
    train = np.setdiff1d(np.arange(n_vocab, dtype=np.int64), ood)
    return train, ood


@dataclass(frozen=True)
class Batch:
    """A batch of sequences of length T+1: inputs ``tokens[:, :-1]``, targets ``tokens[:, 1:]``.

    ``occurrence[b, t]`` belongs to target position t: 0 when ``tokens[b, t]`` is not a trigger
    (the target follows the bigram), otherwise the number of times the trigger has been seen so
    far up to and including position t (1: first occurrence, not predictable from the context;
    ≥ 2: *in-context* position).
    """

    tokens: np.ndarray  # (B, T+1) int64
    occurrence: np.ndarray  # (B, T) int64
    triggers: np.ndarray  # (B, K) int64
    outputs: np.ndarray  # (B, K) int64

    @property
    def inputs(self) -> np.ndarray:
        return self.tokens[:, :-1]

    @property
    def targets(self) -> np.ndarray:
        return self.tokens[:, 1:]


def batch_rng(seed: int, step: int, split: Split) -> np.random.Generator:
    """The generator of the batch of ``split`` at ``step``: a function of (seed, split, step)."""
    if split not in SPLIT_CODES:
        raise ValueError(f"split={split!r} must be one of {sorted(SPLIT_CODES)}")
    if seed < 0 or step < 0:
        raise ValueError(f"seed={seed} and step={step} must be non-negative")
    return np.random.default_rng([int(seed), SPLIT_CODES[split], int(step)])


def generate(
    language: BigramLanguage,
    rng: np.random.Generator,
    batch_size: int,
    seq_len: int,
    n_triggers: int,
    fixed_triggers: bool,
    output_pool: np.ndarray,
    bigram_outputs: bool = False,
    no_repeat: bool = True,
) -> Batch:
    """Sample a batch of trigger-bigram sequences (vectorised over the batch, looped over time).

    Triggers are the ``n_triggers`` most frequent characters, or per sequence K distinct tokens
    drawn from the unigram without replacement (Gumbel top-K). Each trigger's output is uniform
    over ``output_pool``, or with ``bigram_outputs`` drawn from the trigger's bigram row
    restricted to the pool (uniform over the pool where that row puts no mass on it). With
    ``no_repeat`` a trigger is never its own output (which would turn the rest of the sequence
    into one repeated token after its first occurrence).
    """
    v = language.n_vocab
    if batch_size < 1 or seq_len < 1:
        raise ValueError(f"batch_size={batch_size} and seq_len={seq_len} must be positive")
    if not 0 < n_triggers <= v:
        raise ValueError(f"n_triggers={n_triggers} must be in [1, n_vocab={v}]")
    pool = np.unique(np.asarray(output_pool, dtype=np.int64))
    if pool.size == 0:
        raise ValueError("output_pool is empty; lower ood_fraction")
    if pool.min() < 0 or pool.max() >= v:
        raise ValueError(f"output_pool ids must lie in [0, {v})")
    b, k, t_len = batch_size, n_triggers, seq_len

    if fixed_triggers:
        trig = np.broadcast_to(language.most_frequent(k), (b, k)).copy()
    else:
        with np.errstate(divide="ignore"):
            logp = np.log(language.unigram)
        keys = logp[None, :] + rng.gumbel(size=(b, v))
        trig = np.argsort(-keys, axis=1, kind="stable")[:, :k].astype(np.int64)

    allowed = np.ones((b, k, pool.size), dtype=bool)
    if no_repeat:
        allowed &= pool[None, None, :] != trig[..., None]
    if not allowed.any(axis=-1).all():
        raise ValueError(
            f"output_pool {pool.tolist()} holds no output for some trigger with no_repeat; "
            "lower ood_fraction or set no_repeat false"
        )
    weights = language.bigram[trig][..., pool] * allowed if bigram_outputs else allowed * 1.0
    mass = weights.sum(axis=-1, keepdims=True)
    weights = np.where(mass > 0, weights, allowed)  # uniform where the row puts no mass
    weights = weights / weights.sum(axis=-1, keepdims=True)
    outs = pool[_sample_rows(_exact_cdf(weights), rng.random((b, k)))]

    uni_cdf = _exact_cdf(language.unigram)[0]
    big_cdf = _exact_cdf(language.bigram)
    tokens = np.empty((b, t_len + 1), dtype=np.int64)
    tokens[:, 0] = _sample_rows(uni_cdf[None, :], rng.random(b))
    occurrence = np.zeros((b, t_len), dtype=np.int64)
    counts = np.zeros((b, k), dtype=np.int64)
    u = rng.random((b, t_len))
    rows_b = np.arange(b)
    for t in range(t_len):
        last = tokens[:, t]
        hit = trig == last[:, None]
        is_trig = hit.any(axis=1)
        which = hit.argmax(axis=1)
        counts[rows_b, which] += is_trig
        occurrence[:, t] = np.where(is_trig, counts[rows_b, which], 0)
        nxt = _sample_rows(big_cdf[last], u[:, t])
        tokens[:, t + 1] = np.where(is_trig, outs[rows_b, which], nxt)
    return Batch(tokens, occurrence, trig, outs)
