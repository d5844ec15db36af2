"""Selections and checks of the softmax-bottleneck study's plan (:mod:`repgeom.bottleneck.plan`)
that need no workflow import: named models, corpora and tokenizers that exist, the checkpoints
of the heads, the memory of a heads job and the shape of an n-gram count. Each appends the
message of what is wrong, naming the config key, to ``errors``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from repgeom.bottleneck.memory import check_heads_memory
from repgeom.bottleneck.options import HeadTraining, NgramOptions

MIB = 2**20
HEADS_MEM_MB = 8000  # resources.mem_mb of a heads job whose model's size is not known


def known_names(
    given: Sequence[str] | None,
    known: Sequence[str] | Mapping[str, Any],
    key: str,
    what: str,
    errors: list[str],
) -> list[str]:
    """The names ``given`` (None: every ``known`` one) that are ``known``; each other one is an
    error "config key '<key>[i]': <name> is not <what>"."""
    if given is None:
        return list(known)
    for i, name in enumerate(given):
        if name not in known:
            errors.append(f"config key '{key}[{i}]': {name!r} is not {what}")
    return [name for name in given if name in known]


def heads_corpus_error(
    corpus: str | None, corpora: Mapping[str, Mapping[str, Any]], extract_corpora: Sequence[str]
) -> str | None:
    """Why ``bottleneck.heads.corpus`` cannot train and evaluate the heads, or None."""
    if corpus is None or corpus not in extract_corpora:
        return (
            f"config key 'bottleneck.heads.corpus': {corpus!r} is not an extraction corpus "
            f"(extraction corpora: {list(extract_corpora)}); the heads are evaluated on its "
            "eval activations"
        )
    if corpora[corpus]["kind"] == "aligned":
        return (
            f"config key 'bottleneck.heads.corpus': {corpus!r} is a corpus of the languages "
            "study whose train split is a copy of its eval split; choose a text corpus"
        )
    return None


def heads_steps(
    selection: str | Sequence[str],
    name: str,
    have: Sequence[str],
    last: Mapping[str, str],
    errors: list[str],
) -> list[str]:
    """The checkpoints of model ``name`` (which has ``have``) that ``bottleneck.heads.steps``
    selects: its last one (``last``: each model's, as planning decided it), all of them, or the
    listed ones it has (the others are errors)."""
    have = list(have)
    if selection == "last":
        return [last[name]]
    if selection == "all":
        return have
    bad = [s for s in selection if s not in have]
    if bad:
        errors.append(
            f"config key 'bottleneck.heads.steps': {bad} are not checkpoints of "
            f"{name!r} (it has {have})"
        )
    return [s for s in selection if s in have]


def heads_mem_mb(
    cfg: HeadTraining,
    memory_mb: int | None,
    name: str,
    dims: tuple[int, int] | None,
    errors: list[str],
) -> int:
    """resources.mem_mb of the heads jobs of model ``name`` whose LM head is ``dims`` (V, d)
    (None: not known when the config is parsed): ``memory_mb`` when set, else the heads'
    estimate plus 2000 MB. Ranks out of range and an estimate above ``memory_mb`` are errors."""
    if dims is None:
        return memory_mb if memory_mb is not None else HEADS_MEM_MB
    v, d = dims
    try:
        est = cfg.memory_estimate(v, d, f"model {name!r}")
    except ValueError as err:
        errors.append(str(err))
        return memory_mb if memory_mb is not None else HEADS_MEM_MB
    try:
        check_heads_memory(est, None if memory_mb is None else memory_mb * MIB)
    except MemoryError as err:
        errors.append(f"config key 'bottleneck.heads' (model {name!r}, V={v}, d={d}): {err}")
    return memory_mb if memory_mb is not None else max(2000, int(est["total"] / MIB) + 2000)


def ngram_tokenizers(
    given: Sequence[str], tokenizers: Mapping[str, Mapping[str, Any]], n: int, errors: list[str]
) -> list[str]:
    """The tokenizers of ``given`` that exist; an unknown one, and one whose windows hold no
    ``n``-gram, is an error."""
    for i, name in enumerate(given):
        if name not in tokenizers:
            errors.append(
                f"config key 'bottleneck.ngram.tokenizers[{i}]': {name!r} is not a tokenizer "
                f"(tokenizers: {list(tokenizers)})"
            )
        elif tokenizers[name]["window"] < n:
            errors.append(
                f"config key 'bottleneck.ngram.n': {n}-grams do not fit in the "
                f"{tokenizers[name]['window']}-token windows of tokenizer {name!r}; lower n or "
                f"raise tokenizers.{name}.window"
            )
    return [name for name in given if name in tokenizers]


def counting_shape(
    options: NgramOptions, sizes: tuple[int, int] | None, window: int
) -> tuple[int, int] | None:
    """(windows, window length) an n-gram job counts: of its token store's ``sizes`` (train
    windows, length) when it exists, else of the token budget in windows of ``window`` tokens;
    None when neither is known (the job checks)."""
    if sizes is not None:
        return options.windows_kept(*sizes), sizes[1]
    if options.max_tokens is not None:
        return options.max_tokens // window, window
    return None
