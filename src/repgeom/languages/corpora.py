"""The members of the per-language study's corpora: their sentences in aligned order, and the
aligned corpus a member is written as.

A study corpus (``flores``, ``minimal_pairs``, ``synthetic_scripts``, ``synthetic_pairs``) is
expanded into member corpora while the workflow plans (:mod:`repgeom.languages.plan`); each
member's job reads its files (:mod:`repgeom.languages.readers`) or makes synthetic text
(:mod:`repgeom.languages.transliteration`, :mod:`repgeom.languages.pairs`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from repgeom.languages.pairs import docstring_sentences, make_minimal_pairs
from repgeom.languages.readers import read_flores_file, read_minimal_pairs
from repgeom.languages.transliteration import transliterate

ORIGINAL_SCRIPT = "Latn"
PAIR_SIDES = ("good", "bad")


def derived_name(group: str, member: str) -> str:
    """Name of one corpus expanded from a study corpus, e.g. 'flores-eng_Latn'."""
    return f"{group}-{member}"


def member_sentences(
    entry: Mapping[str, Any], source_docs: Sequence[str] | None = None
) -> list[str]:
    """The sentences of one member of a study corpus, in aligned order.

    FLORES members are checked against the group's first language (same sentence count);
    synthetic members are made from ``source_docs`` (the source corpus's eval documents) with
    :func:`docstring_sentences`, :func:`transliterate` and :func:`make_minimal_pairs`.
    """
    origin = entry["origin"]
    member = entry["member"]
    if origin == "flores":
        own = read_flores_file(Path(entry["file"]))
        if entry["anchor"] != entry["file"]:
            first = entry["members"][0]
            n_first = len(read_flores_file(Path(entry["anchor"])))
            if n_first != len(own):
                raise ValueError(
                    f"FLORES corpus {derived_name(entry['group'], member)}: {entry['file']} has "
                    f"{len(own)} sentences but {first!r} ({entry['anchor']}) has {n_first}; "
                    "the languages must be aligned sentence by sentence (same release and split)"
                )
        return own
    if origin == "minimal_pairs":
        good, bad = read_minimal_pairs(
            Path(entry["path"]), entry["good_column"], entry["bad_column"]
        )
        return good if member == "good" else bad
    if source_docs is None:
        raise ValueError(f"{origin} corpus {entry['group']!r} needs its source documents")
    if origin == "synthetic_scripts":
        sentences = docstring_sentences(source_docs, entry["n_sentences"])
        _enough(sentences, entry)
        if member == ORIGINAL_SCRIPT:
            return sentences
        return [transliterate(s, member) for s in sentences]
    if origin == "synthetic_pairs":
        sentences = docstring_sentences(source_docs)
        _enough(sentences, entry)
        good, bad = make_minimal_pairs(sentences, entry["seed"])
        n = entry["n_sentences"]
        return (good if member == "good" else bad)[:n]
    raise ValueError(f"unknown study corpus origin {origin!r}")


def _enough(sentences: list[str], entry: Mapping[str, Any]) -> None:
    if len(sentences) < 2:
        raise ValueError(
            f"corpus {entry['source']!r} has {len(sentences)} eval document(s) whose first "
            f"sentence is plain ASCII prose; {entry['group']!r} needs at least 2 (give the "
            "source corpus more documents or a larger eval_fraction)"
        )


def write_aligned_corpus(
    sentences: Sequence[str], out_dir: str | Path, attrs: Mapping[str, Any]
) -> dict[str, Any]:
    """Write an aligned corpus: every sentence in eval.jsonl in order, train.jsonl a copy.

    Aligned corpora must not be split by content hash (that would break the alignment by
    index), so every sentence is in the eval split; the train split is an identical copy so
    that a tokenizer or model can still be trained on it (its eval loss is then on seen text).
    Writes stats.json with the same keys as :func:`repgeom.data.corpus.write_corpus`.
    """
    from repgeom.data.corpus import content_sha256
    from repgeom.io import atomic_path, write_json

    docs = list(sentences)
    if not docs:
        raise ValueError("the aligned corpus has no sentences")
    empty = [i for i, s in enumerate(docs) if not s.strip()]
    if empty:
        raise ValueError(f"sentence(s) {empty[:10]} are empty; an aligned corpus needs text")
    out = Path(out_dir)
    sha = content_sha256(docs)
    stats: dict[str, Any] = dict(attrs)
    stats.update(
        sha256=sha,
        n_documents=len(docs),
        n_characters=sum(len(d) for d in docs),
        eval_fraction=1.0,
        split="aligned: every sentence in eval, in order; train is an identical copy",
    )
    for name in ("train", "eval"):
        with atomic_path(out / f"{name}.jsonl") as tmp, open(tmp, "w", encoding="utf-8") as f:
            for d in docs:
                f.write(json.dumps({"text": d}, ensure_ascii=False) + "\n")
        stats[f"n_{name}"] = len(docs)
        stats[f"sha256_{name}"] = sha
    write_json(stats, out / "stats.json")
    return stats
