"""Synthetic minimal pairs (one swap of adjacent words) and the plain-prose sentences the
synthetic corpora are made from (first sentences of docstrings), so the study runs offline.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np


def swap_adjacent_words(sentence: str, rng: np.random.Generator) -> str | None:
    """The sentence with one random pair of adjacent, different words swapped.

    Words are whitespace-separated tokens (punctuation stays attached to its word) and the
    result is re-joined with single spaces. A sentence with no two adjacent different words (one
    word, or scripts written without spaces) gives None.
    """
    words = sentence.split()
    candidates = [i for i in range(len(words) - 1) if words[i] != words[i + 1]]
    if not candidates:
        return None
    i = candidates[int(rng.integers(len(candidates)))]
    words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


def make_minimal_pairs(sentences: Sequence[str], seed: int) -> tuple[list[str], list[str]]:
    """Synthetic (grammatical, word-swapped) pairs, aligned; sentences with no swap are skipped.

    The grammatical side is the sentence with its whitespace normalised to single spaces, so the
    two sides differ by exactly one swap of adjacent words.
    """
    rng = np.random.default_rng(seed)
    good, bad = [], []
    for s in sentences:
        swapped = swap_adjacent_words(s, rng)
        if swapped is not None:
            good.append(" ".join(s.split()))
            bad.append(swapped)
    if not good:
        raise ValueError("no sentence has two adjacent different words; no minimal pair made")
    return good, bad


# -------------------------------------------------- docstring sentences (synthetic source text)

_SENTENCE_END = re.compile(r"(?<=[A-Za-z)])\.(?=\s|$)")
_PLAIN_SENTENCE = re.compile(r"[A-Za-z][A-Za-z ,;:'()-]*[A-Za-z)]\.?")


def first_sentence(doc: str) -> str:
    """The first sentence of a document: its first paragraph up to the first full stop.

    Whitespace (line breaks included) is normalised to single spaces.
    """
    paragraph = " ".join(doc.strip().split("\n\n", 1)[0].split())
    end = _SENTENCE_END.search(paragraph)
    return paragraph[: end.end()] if end else paragraph


def docstring_sentences(
    docs: Sequence[str], n: int | None = None, min_words: int = 3, max_chars: int = 200
) -> list[str]:
    """The first sentences of documents that are plain ASCII prose, deduplicated, in order.

    A sentence is kept when it holds only ASCII letters, spaces and ``, ; : ' ( ) -`` (an
    optional final full stop), starts with a letter, has at least ``min_words`` words and at
    most ``max_chars`` characters: plain Latin-script prose, so that :func:`transliterate`
    applies to every letter and :func:`swap_adjacent_words` finds words to swap. The first
    ``n`` kept sentences are returned (all when None).
    """
    if n is not None and n < 1:
        raise ValueError(f"n must be ≥ 1 (or None for all), got {n}")
    out: list[str] = []
    seen: set[str] = set()
    for doc in docs:
        s = first_sentence(doc)
        if (
            s not in seen
            and len(s) <= max_chars
            and _PLAIN_SENTENCE.fullmatch(s)
            and len(s.split()) >= min_words
        ):
            seen.add(s)
            out.append(s)
            if n is not None and len(out) == n:
                break
    return out
