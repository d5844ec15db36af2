"""The interface metrics read activations through: per-layer row blocks of float32 vectors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np


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
    """A LayerSource over an in-memory (layer, token, hidden) array (tests, notebooks)."""

    def __init__(
        self,
        hidden: np.ndarray,
        position: np.ndarray | None = None,
        sequence: np.ndarray | None = None,
        token_id: np.ndarray | None = None,
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

    def read(self, layer: int, rows: np.ndarray | None = None) -> np.ndarray:
        x = self.hidden[layer] if rows is None else self.hidden[layer][rows]
        return np.asarray(x, dtype=np.float32)

    def iter_blocks(
        self, layer: int, rows: np.ndarray | None = None, block: int = 65536
    ) -> Iterator[np.ndarray]:
        idx = np.arange(self.n_tokens) if rows is None else np.asarray(rows)
        for start in range(0, len(idx), block):
            yield self.read(layer, idx[start : start + block])
