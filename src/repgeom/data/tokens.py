"""Token windows: int32 (sequence, position) arrays per split, stored in Zarr (each split a
group that opens with ``xr.open_zarr(path, group="eval")``). Every chunk ends with its crc32c
checksum: a chunk whose bytes changed raises :class:`~repgeom.io.CorruptStoreError` naming the
store and the chunk (stores written before, without it, read as they did)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

SPLITS = ("train", "eval")


@dataclass
class Windows:
    """Token ids (sequence, position) with the valid length of each row (the rest is padding)."""

    ids: np.ndarray
    lengths: np.ndarray

    @property
    def n_tokens(self) -> int:
        return int(self.lengths.sum())


def bos_id(tokenizer: Any) -> int:
    """The token prepended to each window: BOS, else CLS; raises if the tokenizer has neither."""
    for name in ("bos_token_id", "cls_token_id"):
        value = getattr(tokenizer, name, None)
        if value is not None:
            return int(value)
    raise ValueError("bos: prepend needs a tokenizer with a BOS or CLS token; set bos: none")


def encode(docs: list[str], tokenizer: Any) -> list[list[int]]:
    """Token ids of each document, without special tokens."""
    if not docs:
        return []
    return tokenizer(docs, add_special_tokens=False)["input_ids"]


def stream_windows(encoded: list[list[int]], window: int, sep: int, bos: int | None) -> Windows:
    """Concatenate documents with a separator and cut fixed-length windows (the tail is dropped)."""
    body = window - (1 if bos is not None else 0)
    if body < 1:
        raise ValueError(f"window={window} leaves no room for tokens")
    stream = np.fromiter(
        (t for doc in encoded for t in [*doc, sep]),
        dtype=np.int64,
        count=sum(len(d) + 1 for d in encoded),
    )
    n = len(stream) // body
    ids = stream[: n * body].reshape(n, body)
    if bos is not None:
        ids = np.concatenate([np.full((n, 1), bos, dtype=np.int64), ids], axis=1)
    return Windows(ids.astype(np.int32), np.full(n, window, dtype=np.int32))


def too_short(
    corpus: str, tokenizer: str, split: str, n_tokens: int, window: int, bos: int | None
) -> ValueError:
    """The error for a split of a corpus that yields no window: names the corpus, the tokenizer,
    the tokens the split has and the window, and what to do."""
    body = window - (1 if bos is not None else 0)
    needs = f"{body} tokens + BOS" if bos is not None else f"{body} tokens"
    return ValueError(
        f"corpus {corpus!r} is shorter than one token window: its {split} split has {n_tokens} "
        f"tokens with tokenizer {tokenizer!r} (separators included), one window of {window} "
        f"needs {needs}; add documents to corpora.{corpus} (or raise its eval_fraction if the "
        f"eval split is the short one), or lower tokenizers.{tokenizer}.window"
    )


def document_windows(encoded: list[list[int]], window: int, pad: int, bos: int | None) -> Windows:
    """One row per document, truncated to the window and padded (ragged lengths kept)."""
    body = window - (1 if bos is not None else 0)
    rows = [([bos] if bos is not None else []) + doc[:body] for doc in encoded if doc]
    ids = np.full((len(rows), window), pad, dtype=np.int32)
    lengths = np.zeros(len(rows), dtype=np.int32)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        lengths[i] = len(row)
    return Windows(ids, lengths)


def random_windows(
    n_sequences: int, window: int, vocab_size: int, exclude: list[int], bos: int | None, seed: int
) -> Windows:
    """Uniform random token ids over the vocabulary without special tokens (the paper's control)."""
    allowed = np.setdiff1d(np.arange(vocab_size), np.asarray(exclude, dtype=np.int64))
    rng = np.random.default_rng(seed)
    body = window - (1 if bos is not None else 0)
    ids = allowed[rng.integers(0, len(allowed), size=(n_sequences, body))]
    if bos is not None:
        ids = np.concatenate([np.full((n_sequences, 1), bos), ids], axis=1)
    return Windows(ids.astype(np.int32), np.full(n_sequences, window, dtype=np.int32))


def random_splits(
    n_sequences: int, window: int, vocab_size: int, exclude: list[int], bos: int | None, seed: int
) -> dict[str, Windows]:
    """:func:`random_windows` of every split, split i drawn with ``seed + i``."""
    return {
        name: random_windows(n_sequences, window, vocab_size, exclude, bos, seed + i)
        for i, name in enumerate(SPLITS)
    }


class ShortCorpusError(ValueError):
    """A split of a corpus yields no token window (:func:`too_short` says what to do)."""


def corpus_splits(
    tokenizer: Any,
    documents: Callable[[str], list[str]],
    window: int,
    bos: int | None,
    one_row_per_document: bool,
    names: tuple[str, str],
) -> dict[str, Windows]:
    """The windows of every split's ``documents(split)``: one (truncated) row per document, or
    the documents joined by the tokenizer's EOS (else SEP) token and cut into windows
    (:func:`document_windows`, :func:`stream_windows`). :class:`ShortCorpusError` for a split
    without a window, naming the corpus and the tokenizer (``names``)."""
    sep = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    splits = {}
    for name in SPLITS:
        encoded = encode(documents(name), tokenizer)
        if one_row_per_document:
            splits[name] = document_windows(encoded, window, pad, bos)
        else:
            if sep is None:
                raise ValueError("the tokenizer has no EOS or SEP token to separate documents")
            splits[name] = stream_windows(encoded, window, sep, bos)
        if len(splits[name].lengths) == 0:
            n = sum(len(d) + (not one_row_per_document) for d in encoded)
            raise ShortCorpusError(str(too_short(*names, name, n, window, bos)))
    return splits


def write_tokens(path: str | Path, splits: dict[str, Windows], attrs: dict[str, Any]) -> None:
    """Write each split's ids and lengths to a Zarr group, atomically, each chunk with its
    crc32c checksum."""
    from zarr.codecs import ZstdCodec

    from repgeom.io import atomic_path, checksum_codecs

    with atomic_path(path) as tmp:
        root = zarr.open_group(str(tmp), mode="w")
        for name, w in splits.items():
            if len(w.lengths) == 0:
                raise ValueError(
                    f"the {name} split yields no token window; lower the window length"
                    " or add documents"
                )
            g = root.create_group(name)
            rows = max(1, min(len(w.ids), (1 << 20) // (4 * w.ids.shape[1])))
            g.create_array(
                "ids",
                data=w.ids,
                chunks=(rows, w.ids.shape[1]),
                compressors=checksum_codecs(ZstdCodec(level=0)),
                dimension_names=["sequence", "position"],
                attributes={"long_name": "token ids (padding after length)", "units": "1"},
            )
            g.create_array(
                "lengths",
                data=w.lengths,
                compressors=checksum_codecs(ZstdCodec(level=0)),
                dimension_names=["sequence"],
                attributes={"long_name": "tokens of the window", "units": "tokens"},
            )
            g.attrs.update(n_sequences=len(w.lengths), n_tokens=w.n_tokens)
        root.attrs.update(attrs)
        with warnings.catch_warnings():  # consolidated metadata is not in the Zarr v3 spec (yet)
            warnings.simplefilter("ignore", UserWarning)
            zarr.consolidate_metadata(root.store)


def read_tokens(
    path: str | Path, split: str, max_tokens: int | None = None, max_sentences: int | None = None
) -> Windows:
    """The first sequences of a split: at most ``max_tokens`` tokens and ``max_sentences``
    sequences (no limit where None). A chunk whose checksum does not match raises
    :class:`~repgeom.io.CorruptStoreError` naming the store and the chunk."""
    from repgeom.io import checked_read

    root = zarr.open_group(str(path), mode="r")
    if split not in root:
        raise KeyError(f"{path} has no split {split!r}; it has {sorted(root.group_keys())}")
    lengths_array = root[split]["lengths"]
    lengths = np.asarray(checked_read(path, lengths_array, lambda: lengths_array[:]))
    n = len(lengths)
    if max_tokens is not None:
        n = int(np.searchsorted(np.cumsum(lengths), max_tokens, side="right"))
        if n == 0:
            raise ValueError(f"max_tokens={max_tokens} is shorter than one window of {path}")
    if max_sentences is not None:
        if max_sentences < 1:
            raise ValueError(f"max_sentences must be ≥ 1, got {max_sentences}")
        n = min(n, max_sentences)
    ids_array = root[split]["ids"]
    step = ids_array.chunks[0]
    chunks = [range(-(-n // step)), None]
    ids = np.asarray(checked_read(path, ids_array, lambda: ids_array[:n], chunks))
    return Windows(ids, lengths[:n])


def tokens_attrs(path: str | Path) -> dict[str, Any]:
    """The attributes of a token store."""
    return dict(zarr.open_group(str(path), mode="r").attrs)
