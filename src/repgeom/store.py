"""The activation store: hidden states (layer, token, hidden) in Zarr, one array per layer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import zarr

FLOAT16_MAX = float(np.finfo(np.float16).max)


def chunk_rows(hidden_size: int, itemsize: int, min_bytes: int = 1 << 20) -> int:
    """Rows per chunk so that one chunk of one layer holds at least min_bytes."""
    return max(1, -(-min_bytes // (hidden_size * itemsize)))


class LayerWriter:
    """Appends rows of one layer, writing whole chunks; switches to float32 if float16 overflows."""

    def __init__(
        self, group: zarr.Group, name: str, n_tokens: int, hidden_size: int, dtype: str = "float16"
    ) -> None:
        self.group, self.name = group, name
        self.n_tokens, self.hidden_size = n_tokens, hidden_size
        self.dtype = np.dtype(dtype)
        self.array = self._create(self.dtype)
        self.written = 0
        self.buffer: list[np.ndarray] = []
        self.buffered = 0

    def _create(self, dtype: np.dtype) -> zarr.Array:
        rows = min(self.n_tokens, chunk_rows(self.hidden_size, dtype.itemsize))
        return self.group.create_array(
            self.name,
            shape=(self.n_tokens, self.hidden_size),
            dtype=dtype,
            chunks=(rows, self.hidden_size),
            compressors=None,
            overwrite=True,
        )

    def append(self, rows: np.ndarray, amax: float | None = None) -> None:
        """Add rows (float32, or float16 already rounded; ``amax``: their largest |value| if the
        caller knows it); the first value beyond the float16 range moves the layer to float32."""
        if self.dtype == np.float16 and rows.size:
            if amax is None:
                amax = float(np.abs(rows).max())
            if amax > FLOAT16_MAX:
                self._promote()
        self.buffer.append(np.asarray(rows, dtype=self.dtype))
        self.buffered += len(rows)
        chunk = self.array.chunks[0]
        if self.buffered >= chunk:
            self._flush(whole_chunks=True)

    def _flush(self, whole_chunks: bool) -> None:
        if not self.buffer:
            return
        data = np.concatenate(self.buffer)
        chunk = self.array.chunks[0]
        n = (len(data) // chunk) * chunk if whole_chunks else len(data)
        if n:
            self.array[self.written : self.written + n] = data[:n]
            self.written += n
        rest = data[n:]
        self.buffer = [rest] if len(rest) else []
        self.buffered = len(rest)

    def _promote(self) -> None:
        done = np.asarray(self.array[: self.written], dtype=np.float32)
        pending = [b.astype(np.float32) for b in self.buffer]
        self.dtype = np.dtype(np.float32)
        self.array = self._create(self.dtype)
        if self.written:
            self.array[: self.written] = done
        self.buffer = pending

    def close(self) -> None:
        """Write what is buffered and check that every row arrived."""
        self._flush(whole_chunks=False)
        if self.written != self.n_tokens:
            raise RuntimeError(f"layer {self.name}: wrote {self.written} of {self.n_tokens} rows")


class ActivationStore:
    """Reads a store written by extraction; implements the LayerSource protocol."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"activation store {self.path} does not exist")
        self.root = zarr.open_group(str(self.path), mode="r")
        self.attrs: dict[str, Any] = dict(self.root.attrs)
        self.hidden = self.root["hidden"]
        self.layers = sorted(int(k) for k in self.hidden.array_keys())
        first = self.hidden[str(self.layers[0])]
        self.n_tokens, self.hidden_size = first.shape
        self.token_id = np.asarray(self.root["token_id"][:])
        self.sequence = np.asarray(self.root["sequence"][:])
        self.position = np.asarray(self.root["position"][:])

    @property
    def n_sentences(self) -> int:
        """Number of sequences (sentences or windows) in the store."""
        return int(self.root["sentence"]["0"].shape[0])

    def read_sentences(self, layer: int) -> np.ndarray:
        """Mean over the non-padding tokens of each sequence, (sequence, hidden) float32."""
        return np.asarray(self.root["sentence"][str(layer)][:], dtype=np.float32)

    def dtype(self, layer: int) -> np.dtype:
        """Storage dtype of a layer (float16, or float32 where float16 overflowed)."""
        return self.hidden[str(layer)].dtype

    def read(self, layer: int, rows: np.ndarray | None = None) -> np.ndarray:
        arr = self.hidden[str(layer)]
        x = (
            arr[:]
            if rows is None
            else arr.get_orthogonal_selection((np.asarray(rows), slice(None)))
        )
        return np.asarray(x, dtype=np.float32)

    def iter_blocks(
        self, layer: int, rows: np.ndarray | None = None, block: int = 65536
    ) -> Iterator[np.ndarray]:
        arr = self.hidden[str(layer)]
        if rows is None:
            for start in range(0, self.n_tokens, block):
                yield np.asarray(arr[start : start + block], dtype=np.float32)
            return
        rows = np.asarray(rows)
        for start in range(0, len(rows), block):
            yield self.read(layer, rows[start : start + block])
