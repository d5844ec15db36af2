"""The interface metrics read activations through: per-layer row blocks of float32 vectors.

:func:`final_norm_view` gives the convention ``metrics.geometry.conventions.final_norm``: a
source whose last layer is read ``after`` the model's final norm (what Hugging Face returns as
the last hidden state, what a store's last layer holds) or ``before`` it (the norm's input, the
last block's output, which extraction stores beside the layers when asked).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np

FINAL_NORMS = ("before", "after")


class LayerSource(Protocol):
    """Per-layer (token, hidden) matrices, read block by block; the Zarr store implements it."""

    layers: list[int]
    n_tokens: int
    hidden_size: int
    position: np.ndarray  # (n_tokens,) position of each token in its window
    sequence: np.ndarray  # (n_tokens,) window index of each token
    token_id: np.ndarray  # (n_tokens,) token id of each token

    def iter_blocks(
        self, layer: int, rows: np.ndarray | None = None, block: int = 65536
    ) -> Iterator[np.ndarray]:
        """Float32 blocks (n_i, hidden) of one layer, in token order; only ``rows`` if given."""
        ...

    def read(self, layer: int, rows: np.ndarray | None = None) -> np.ndarray:
        """One layer (or the given sorted rows of it) as a float32 (n, hidden) array."""
        ...


class ArraySource:
    """A LayerSource over an in-memory (layer, token, hidden) array (tests, notebooks).

    ``pre_final_norm``: the (token, hidden) input of the final norm at the last layer, read by
    ``final_norm_view(source, "before")``; ``has_final_norm`` (default: whether that array is
    given) False: a model without a final norm (before = after), True without the array: a
    store that lacks it (``before`` raises)."""

    def __init__(
        self,
        hidden: np.ndarray,
        position: np.ndarray | None = None,
        sequence: np.ndarray | None = None,
        token_id: np.ndarray | None = None,
        pre_final_norm: np.ndarray | None = None,
        has_final_norm: bool | None = None,
    ) -> None:
        if hidden.ndim != 3:
            raise ValueError(f"hidden must be (layer, token, hidden), got shape {hidden.shape}")
        self.hidden = hidden
        self.layers = list(range(hidden.shape[0]))
        self.n_tokens = hidden.shape[1]
        self.hidden_size = hidden.shape[2]
        n = self.n_tokens
        self.position = np.arange(n) if position is None else np.asarray(position)
        self.sequence = np.zeros(n, dtype=np.int64) if sequence is None else np.asarray(sequence)
        self.token_id = np.zeros(n, dtype=np.int64) if token_id is None else np.asarray(token_id)
        if pre_final_norm is not None and pre_final_norm.shape != hidden.shape[1:]:
            raise ValueError(
                f"pre_final_norm must be (token, hidden) {hidden.shape[1:]}, got shape "
                f"{pre_final_norm.shape}"
            )
        if pre_final_norm is not None and has_final_norm is False:
            raise ValueError("pre_final_norm is the input of a final norm: has_final_norm=False")
        self.pre = pre_final_norm
        self.final_norm_layer = None if pre_final_norm is None else self.layers[-1]
        if pre_final_norm is not None:
            self.pre_final_norm = "stored"
        else:
            self.pre_final_norm = "not_stored" if has_final_norm else "none"

    def read_pre_final_norm(self, rows: np.ndarray | None = None) -> np.ndarray:
        """The final norm's input (or rows of it) as float32 (KeyError where not given)."""
        if self.pre is None:
            raise KeyError(f"no input of the final norm (pre_final_norm: {self.pre_final_norm})")
        return np.asarray(self.pre if rows is None else self.pre[rows], dtype=np.float32)

    def iter_pre_final_norm_blocks(
        self, rows: np.ndarray | None = None, block: int = 65536
    ) -> Iterator[np.ndarray]:
        idx = np.arange(self.n_tokens) if rows is None else np.asarray(rows)
        for start in range(0, len(idx), block):
            yield self.read_pre_final_norm(idx[start : start + block])

    def read(self, layer: int, rows: np.ndarray | None = None) -> np.ndarray:
        x = self.hidden[layer] if rows is None else self.hidden[layer][rows]
        return np.asarray(x, dtype=np.float32)

    def iter_blocks(
        self, layer: int, rows: np.ndarray | None = None, block: int = 65536
    ) -> Iterator[np.ndarray]:
        idx = np.arange(self.n_tokens) if rows is None else np.asarray(rows)
        for start in range(0, len(idx), block):
            yield self.read(layer, idx[start : start + block])


class BeforeFinalNorm:
    """A LayerSource: ``source`` with layer ``layer`` read before the final norm (its input,
    :meth:`read_pre_final_norm` of the source); every other layer and attribute (``attrs``,
    ``provenance()``, ``path``, ...) is the source's. Made by :func:`final_norm_view`."""

    final_norm = "before"

    def __init__(self, source: Any, layer: int) -> None:
        self.source = source
        self.final_norm_layer = layer
        self.layers = list(source.layers)
        self.n_tokens = source.n_tokens
        self.hidden_size = source.hidden_size
        self.position = source.position
        self.sequence = source.sequence
        self.token_id = source.token_id

    def __getattr__(self, name: str) -> Any:
        if name == "source":  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.source, name)

    def read(self, layer: int, rows: np.ndarray | None = None) -> np.ndarray:
        if layer == self.final_norm_layer:
            return self.source.read_pre_final_norm(rows)
        return self.source.read(layer, rows)

    def iter_blocks(
        self, layer: int, rows: np.ndarray | None = None, block: int = 65536
    ) -> Iterator[np.ndarray]:
        if layer == self.final_norm_layer:
            return self.source.iter_pre_final_norm_blocks(rows, block)
        return self.source.iter_blocks(layer, rows, block)

    def read_rows(self, layer: int, start: int, stop: int) -> np.ndarray:
        """Rows start:stop of a layer (sources that read row ranges: the store)."""
        if layer == self.final_norm_layer:
            return self.source.read_pre_final_norm_rows(start, stop)
        return self.source.read_rows(layer, start, stop)

    def read_sentences(self, layer: int) -> np.ndarray:
        """Sequence means of a layer (sources that store them: the store)."""
        if layer == self.final_norm_layer:
            return self.source.read_pre_final_norm_sentences()
        return self.source.read_sentences(layer)

    def dtype(self, layer: int) -> np.dtype:
        """Storage dtype of a layer (sources that store it: the store)."""
        if layer == self.final_norm_layer:
            return self.source.pre_final_norm_dtype()
        return self.source.dtype(layer)


def final_norm_view(source: LayerSource, final_norm: str) -> LayerSource:
    """``source`` under the convention ``final_norm`` for its last layer.

    ``after``: the source itself (a store's last layer is the model's last hidden state, after
    its final norm). ``before``: a :class:`BeforeFinalNorm` view whose last layer is the final
    norm's input, where the source holds it (``pre_final_norm == "stored"``); the source itself
    for a model without a final norm (``none``: post-LN encoders, before = after). ValueError
    naming the store and what to do where the model has a final norm but its input was not
    stored (``not_stored``, and a source that does not say), and for a ``final_norm`` other than
    before/after.
    """
    if final_norm not in FINAL_NORMS:
        raise ValueError(f"final_norm must be one of {FINAL_NORMS}, got {final_norm!r}")
    state = getattr(source, "pre_final_norm", "not_stored")  # a source that does not say
    if final_norm == "after" or state == "none":
        return source
    if state != "stored":
        where = getattr(source, "path", None) or type(source).__name__
        raise ValueError(
            f"activation store {where} holds the last layer after the model's final norm only "
            f"(pre_final_norm: {state}), and metrics.geometry.conventions.final_norm: before "
            "reads the norm's input: extraction stores it only when asked; rerun the extraction "
            "with metrics.geometry.conventions.final_norm: before (snakemake reruns it when "
            "that value changes; from Python: extract(..., pre_final_norm=True))"
        )
    layer = source.final_norm_layer  # type: ignore[attr-defined]
    if layer not in source.layers:
        raise ValueError(
            f"the final norm's input of {getattr(source, 'path', 'the source')} is of layer "
            f"{layer}, not a layer of it ({source.layers})"
        )
    return BeforeFinalNorm(source, layer)
