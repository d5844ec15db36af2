"""The activation store: hidden states (layer, token, hidden) in Zarr, opened by plain xarray.

``xr.open_zarr(path)`` gives one Dataset (lazy, consolidated metadata, named dims):

- ``hidden_state`` (layer, token, hidden) float16: the hidden state after each layer (layer 0 =
  the embedding output) of every non-padding token. A layer with a value beyond float16's range
  is stored in float32 instead, in ``hidden_state_float32`` (layer_float32, token, hidden); its
  slice of ``hidden_state`` holds no chunk and reads as NaN. ``attrs["layer_dtypes"]`` says which.
- ``sequence_mean`` (layer, sequence, hidden) float32: each sequence's (window's or sentence's)
  mean over its non-padding tokens.
- only where extraction was asked for it (``pre_final_norm=True``) and the model has a final
  norm: ``hidden_state_pre_final_norm`` (final_norm_layer, token, hidden) float16, the input of
  the final norm (the last block's output, before ``ln_f`` / ``final_layer_norm`` / ``norm``) of
  the layer ``final_norm_layer`` (one: the last), with the same rows, dtype policy (float32 in
  ``hidden_state_pre_final_norm_float32`` beyond float16's range, ``attrs
  ["pre_final_norm_dtype"]``) and padding handling as ``hidden_state``, and its sequence means in
  ``sequence_mean_pre_final_norm``. It is not a layer: ``layer`` and every array along it are the
  same with or without it. ``attrs["pre_final_norm"]``: ``stored``; ``none`` (the model has no
  final norm, a post-LN encoder: its last layer is the last block's output, before = after);
  ``not_stored`` (a final norm, its input not asked for).
- coordinates: ``layer``, ``token``, ``hidden``, ``sequence`` (indices); on ``token``:
  ``token_id``, ``position`` (in its sequence) and ``token_sequence`` (the sequence it is in);
  on ``sequence``: ``length`` (its tokens).

Chunks hold one layer × a block of tokens of at least 1 MB; rows are written chunk by chunk as
they come (memory does not grow with the tokens), padding never enters the store. Every chunk of
every array ends with its crc32c checksum (Zarr v3's ``crc32c`` codec, layout 3): a chunk whose
bytes changed raises :class:`~repgeom.io.CorruptStoreError` naming the store and the chunk in
:class:`ActivationStore`, which reads it for the metrics (the LayerSource protocol); plain xarray
raises Zarr's ValueError ("Stored and computed checksum do not match").
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from repgeom.io import CorruptStoreError as CorruptStoreError  # raised by the reads below
from repgeom.io import checked_read, checksum_codecs, no_space_for

FLOAT16_MAX = float(np.finfo(np.float16).max)
TOKENS = "hidden_state"
WIDE = "hidden_state_float32"
MEANS = "sequence_mean"
# the input of the final norm at the last layer (extraction's pre_final_norm), not a layer
PRE = "hidden_state_pre_final_norm"
PRE_WIDE = "hidden_state_pre_final_norm_float32"
PRE_MEANS = "sequence_mean_pre_final_norm"
PRE_LAYER = "final_norm_layer"  # its dim and coordinate: the layer whose norm input it holds
# attrs["pre_final_norm"]: stored; none (no final norm: before = after); not_stored
PRE_FINAL_NORM_STATES = ("stored", "none", "not_stored")
# attrs["store_layout"]: 2 opens with xarray, 3 adds a crc32c checksum to every chunk; stores
# without it were written before xarray could open them
LAYOUT = 3
READABLE_LAYOUTS = (2, 3)  # layout 2 reads as before, without a checksum to check
# what every dataset derived from a store records of it (ActivationStore.provenance)
PROVENANCE_KEYS = (
    "model",
    "step",
    "corpus",
    "corpus_sha256",
    "model_source",
    "checkpoint_fingerprint",
)
ON_TOKEN = "token_id position token_sequence"  # coordinates of the token dimension

VARIABLE_ATTRS = {
    TOKENS: {
        "long_name": "hidden state after each layer (0 = embedding output), float16",
        "units": "1",
    },
    WIDE: {"long_name": "hidden state of the layers beyond float16's range", "units": "1"},
    MEANS: {"long_name": "mean hidden state of each sequence's non-padding tokens", "units": "1"},
    PRE: {
        "long_name": "input of the final norm (last block's output, before the norm), float16",
        "units": "1",
    },
    PRE_WIDE: {"long_name": "input of the final norm, beyond float16's range", "units": "1"},
    PRE_MEANS: {
        "long_name": "mean input of the final norm over each sequence's non-padding tokens",
        "units": "1",
    },
    PRE_LAYER: {"long_name": "layer whose final norm's input is stored", "units": "1"},
    "layer": {"long_name": "layer (0 = embedding output)", "units": "1"},
    "layer_float32": {"long_name": "layer stored in float32", "units": "1"},
    "token": {"long_name": "token index in the store", "units": "1"},
    "hidden": {"long_name": "hidden dimension", "units": "1"},
    "sequence": {"long_name": "sequence (window or sentence) index", "units": "1"},
    "token_id": {"long_name": "token id (tokenizer vocabulary)", "units": "1"},
    "position": {"long_name": "position of the token in its sequence", "units": "1"},
    "token_sequence": {"long_name": "sequence the token belongs to", "units": "1"},
    "length": {"long_name": "non-padding tokens of the sequence", "units": "tokens"},
    "decoding": {
        "long_name": "logit-lens decoding (final_norm: norm + LM head; no_norm: head)",
        "units": "1",
    },
    "logit_lens_loss": {
        "long_name": "next-token cross-entropy of the layer decoded by the LM head",
        "units": "nat/token",
    },
    "logit_lens_agreement": {
        "long_name": "share of positions whose decoded top-1 token is the model's prediction",
        "units": "1",
    },
    "logit_lens_loss_se": {
        "long_name": "standard error of the logit-lens loss (std/sqrt(n) of per-token losses)",
        "units": "nat/token",
    },
    "logit_lens_agreement_se": {
        "long_name": "standard error of the logit-lens top-1 agreement (std/sqrt(n))",
        "units": "1",
    },
}


def chunk_rows(hidden_size: int, itemsize: int, min_bytes: int = 1 << 20) -> int:
    """Rows per chunk so that one chunk of one layer holds at least min_bytes."""
    return max(1, -(-min_bytes // (hidden_size * itemsize)))


class OldStoreError(ValueError):
    """A store written in the layout before xarray could open it."""


class LayerWriter:
    """Appends the rows of one layer to its slot of a (layer, row, hidden) array, whole chunks at
    a time; the first value beyond float16's range moves the layer to the float32 array."""

    def __init__(
        self,
        store: StoreWriter,
        name: str,
        slot: int,
        dtype: str = "float16",
        layer: int | None = None,
    ) -> None:
        """``layer``: the layer the rows are of (default: the store's layer at ``slot``)."""
        self.store, self.name, self.slot = store, name, slot
        self.layer = store.layers[slot] if layer is None else layer
        self.array: zarr.Array = store.root[name]
        self.dtype = np.dtype(dtype)
        self.n_rows = self.array.shape[1]
        self.written = 0
        self.buffer: list[np.ndarray] = []
        self.buffered = 0

    def append(self, rows: np.ndarray, amax: float | None = None) -> None:
        """Add rows (float32, or float16 already rounded; ``amax``: their largest |value| if the
        caller knows it)."""
        if self.dtype == np.float16 and rows.size:
            if amax is None:
                amax = float(np.abs(rows).max())
            if amax > FLOAT16_MAX:
                self._promote()
        self.buffer.append(np.asarray(rows, dtype=self.dtype))
        self.buffered += len(rows)
        if self.buffered >= self.array.chunks[1]:
            self._flush(whole_chunks=True)

    def _flush(self, whole_chunks: bool) -> None:
        if not self.buffer:
            return
        data = np.concatenate(self.buffer)
        chunk = self.array.chunks[1]
        n = (len(data) // chunk) * chunk if whole_chunks else len(data)
        if n:
            self.store.write(
                self.array, (self.slot, slice(self.written, self.written + n)), data[:n]
            )
            self.written += n
        rest = data[n:]
        self.buffer = [rest] if len(rest) else []
        self.buffered = len(rest)

    def _promote(self) -> None:
        self.store.wait()  # the rows written so far are read back below
        with no_space_for(self.store.path):
            self._move_to_float32()

    def _move_to_float32(self) -> None:
        old, old_slot = self.array, self.slot
        self.array, self.slot = self.store.float32_slot(self.layer, self.name)
        self.dtype = np.dtype(np.float32)
        step = self.array.chunks[1]
        for start in range(0, self.written, step):
            stop = min(self.written, start + step)
            self.array[self.slot, start:stop] = np.asarray(old[old_slot, start:stop], np.float32)
        old[old_slot] = np.nan  # the fill value: its chunks are deleted
        self.buffer = [b.astype(np.float32) for b in self.buffer]

    def close(self) -> None:
        """Write what is buffered and check that every row arrived."""
        self._flush(whole_chunks=False)
        if self.written != self.n_rows:
            raise RuntimeError(
                f"{self.name} layer {self.layer}: wrote {self.written} of {self.n_rows} rows"
            )


class StoreWriter:
    """Creates an activation store in a Zarr group and hands out one writer per layer.

    Chunks are written by one background thread while the caller computes the next batch (at
    most ``PENDING`` writes in flight); :meth:`close` waits for them and re-raises a failed
    write (a full disk as one line naming the store and the free space). Use it as a context
    manager so that an error stops the writes before the caller removes the unfinished store.
    ``checksum=False`` leaves out the crc32c of each chunk (for the benchmark only)."""

    PENDING = 16

    def __init__(
        self,
        path: str | Path,
        layers: Sequence[int],
        hidden_size: int,
        index: Mapping[str, np.ndarray],
        lengths: np.ndarray | None = None,
        checksum: bool = True,
        pre_final_norm: int | None = None,
    ) -> None:
        """``index``: int64 ``token_id``, ``sequence`` and ``position`` of every token;
        ``lengths``: tokens of each sequence, when the store keeps sequence means;
        ``pre_final_norm``: the layer whose final norm's input is stored too (in ``PRE``, not
        as a layer), or None."""
        self.path = Path(path)
        self.checksum = checksum
        with no_space_for(self.path):
            self.root = zarr.open_group(str(path), mode="w")
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
        self._pending: deque[Future] = deque()
        self.layers = [int(layer) for layer in layers]
        self.hidden_size = hidden_size
        n = len(index["token_id"])
        self.n_tokens = n
        coords = {
            "layer": (["layer"], np.asarray(self.layers, dtype=np.int64)),
            "token": (["token"], np.arange(n, dtype=np.int64)),
            "hidden": (["hidden"], np.arange(hidden_size, dtype=np.int64)),
            "token_id": (["token"], index["token_id"]),
            "position": (["token"], index["position"]),
            "token_sequence": (["token"], index["sequence"]),
        }
        if lengths is not None:
            coords["sequence"] = (["sequence"], np.arange(len(lengths), dtype=np.int64))
            coords["length"] = (["sequence"], np.asarray(lengths, dtype=np.int64))
        for name, (dims, values) in coords.items():
            self._small_array(name, np.asarray(values), dims)
        self._create(TOKENS, len(self.layers), n, "float16", ["layer", "token", "hidden"], ON_TOKEN)
        self.tokens = [LayerWriter(self, TOKENS, i) for i in range(len(self.layers))]
        self.means: list[LayerWriter] = []
        if lengths is not None:
            dims = ["layer", "sequence", "hidden"]
            self._create(MEANS, len(self.layers), len(lengths), "float32", dims, "length")
            self.means = [LayerWriter(self, MEANS, i, "float32") for i in range(len(self.layers))]
        self.wide: list[int] = []
        # the final norm's input: one more writer after the layers' (row_writers, mean_writers)
        self.pre: list[LayerWriter] = []
        self.pre_means: list[LayerWriter] = []
        if pre_final_norm is not None:
            self._add_pre_final_norm(int(pre_final_norm), lengths)

    def _add_pre_final_norm(self, layer: int, lengths: np.ndarray | None) -> None:
        """The arrays of the final norm's input at ``layer`` (see the module docstring)."""
        self._small_array(PRE_LAYER, np.asarray([layer], dtype=np.int64), [PRE_LAYER])
        self._create(PRE, 1, self.n_tokens, "float16", [PRE_LAYER, "token", "hidden"], ON_TOKEN)
        self.pre = [LayerWriter(self, PRE, 0, layer=layer)]
        if lengths is not None:
            dims = [PRE_LAYER, "sequence", "hidden"]
            self._create(PRE_MEANS, 1, len(lengths), "float32", dims, "length")
            self.pre_means = [LayerWriter(self, PRE_MEANS, 0, "float32", layer=layer)]

    @property
    def row_writers(self) -> list[LayerWriter]:
        """The token-row writers of every layer, then of the final norm's input if stored."""
        return self.tokens + self.pre

    @property
    def mean_writers(self) -> list[LayerWriter]:
        """The sequence-mean writers, in the order of :attr:`row_writers`."""
        return self.means + self.pre_means

    def _create(
        self, name: str, n_layers: int, n_rows: int, dtype: str, dims: list[str], coords: str
    ) -> zarr.Array:
        rows = min(max(1, n_rows), chunk_rows(self.hidden_size, np.dtype(dtype).itemsize))
        with no_space_for(self.path):
            return self.root.create_array(
                name,
                shape=(n_layers, n_rows, self.hidden_size),
                dtype=dtype,
                chunks=(1, rows, self.hidden_size),
                compressors=checksum_codecs() if self.checksum else None,
                fill_value=np.nan,
                dimension_names=dims,
                attributes={**VARIABLE_ATTRS[name], "coordinates": coords},
            )

    def _small_array(self, name: str, data: np.ndarray, dims: list[str]) -> zarr.Array:
        """A coordinate or summary array, written at once (zstd, then the checksum)."""
        from zarr.codecs import ZstdCodec

        zstd = ZstdCodec(level=0)
        with no_space_for(self.path):
            return self.root.create_array(
                name,
                data=data,
                dimension_names=dims,
                attributes=VARIABLE_ATTRS[name],
                compressors=checksum_codecs(zstd) if self.checksum else zstd,
            )

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)  # no write outlives the with

    def write(self, array: zarr.Array, where: tuple, data: np.ndarray) -> None:
        """``array[where] = data`` in the background thread."""
        while len(self._pending) >= self.PENDING:
            self._result(self._pending.popleft())
        self._pending.append(self._pool.submit(array.__setitem__, where, data))

    def _result(self, future: Future) -> None:
        with no_space_for(self.path):  # one line, not zarr's asyncio traceback
            future.result()

    def wait(self) -> None:
        """Wait for every write in flight; re-raises the first that failed."""
        while self._pending:
            self._result(self._pending.popleft())

    def float32_slot(self, layer: int, name: str = TOKENS) -> tuple[zarr.Array, int]:
        """The float32 array and the slot of a layer moved there (the array grows by one); for
        the final norm's input (``name`` PRE) its own float32 array, of one slot."""
        if name == PRE:
            dims = [PRE_LAYER, "token", "hidden"]
            return self._create(PRE_WIDE, 1, self.n_tokens, "float32", dims, ON_TOKEN), 0
        if not self.wide:
            dims = ["layer_float32", "token", "hidden"]
            self._create(WIDE, 0, self.n_tokens, "float32", dims, ON_TOKEN)
        wide = self.root[WIDE]
        self.wide.append(layer)
        wide.resize((len(self.wide), self.n_tokens, self.hidden_size))
        return wide, len(self.wide) - 1

    def add_lens(self, results: Mapping[str, np.ndarray], decodings: Sequence[str]) -> None:
        """The logit lens of every layer: ``logit_lens_loss``, ``logit_lens_agreement`` and
        their standard errors (``…_se``), (layer, decoding) (:mod:`repgeom.activations.lens`)."""
        with no_space_for(self.path):
            labels = self.root.create_array(
                "decoding",
                shape=(len(decodings),),
                dtype=str,  # variable-length UTF-8 (a stable Zarr v3 data type)
                dimension_names=["decoding"],
                attributes=VARIABLE_ATTRS["decoding"],
                compressors=checksum_codecs() if self.checksum else "auto",
            )
            labels[:] = np.asarray(decodings)
        for key, values in results.items():
            name = f"logit_lens_{key}"
            values = np.asarray(values, dtype=np.float64)
            self._small_array(name, values, ["layer", "decoding"])

    def close(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        """Flush every layer, write the attributes and consolidate the metadata; returns the
        layout attributes written (``layer_dtypes``, ``store_layout``, and
        ``pre_final_norm_dtype`` where the final norm's input is stored)."""
        for writer in self.row_writers + self.mean_writers:
            writer.close()
        self.wait()
        self._pool.shutdown()
        layout: dict[str, Any] = {
            "layer_dtypes": [str(w.dtype) for w in self.tokens],
            "store_layout": LAYOUT if self.checksum else 2,  # 2: the same without checksums
        }
        if self.pre:
            layout["pre_final_norm_dtype"] = str(self.pre[0].dtype)
        with no_space_for(self.path):
            if self.wide:
                wide = np.asarray(self.wide, dtype=np.int64)
                self._small_array("layer_float32", wide, ["layer_float32"])
            self.root.attrs.update({**attrs, **layout})
            with warnings.catch_warnings():  # consolidated metadata: not in the Zarr v3 spec yet
                warnings.simplefilter("ignore", UserWarning)
                zarr.consolidate_metadata(self.root.store)
        return layout


def layer_location(root: zarr.Group, layer: int) -> tuple[zarr.Array, int]:
    """(array, slot) holding one layer's token rows: the float32 array for a layer beyond
    float16's range, else the float16 one; KeyError for a layer the store lacks."""
    if WIDE in root:
        wide = [int(v) for v in root["layer_float32"][:]]
        if layer in wide:
            return root[WIDE], wide.index(layer)
    layers = [int(v) for v in root["layer"][:]]
    if layer not in layers:
        raise KeyError(f"layer {layer} is not in the store (layers {layers})")
    return root[TOKENS], layers.index(layer)


def pre_final_norm_state(attrs: Mapping[str, Any], stored: bool) -> str:
    """``stored``, ``none`` or ``not_stored`` (see the module docstring) of a store's attrs; a
    store written before the attr existed: ``none`` where its ``final_norm_index`` says the
    model has no final norm, else ``not_stored``."""
    if stored:
        return "stored"
    state = attrs.get("pre_final_norm")
    if state in PRE_FINAL_NORM_STATES:
        return str(state)
    return "none" if attrs.get("final_norm_index") == -1 else "not_stored"


class ActivationStore:
    """Reads a store written by extraction; implements the LayerSource protocol. A chunk whose
    bytes changed since it was written raises :class:`CorruptStoreError` naming the store and
    the chunk (layout 3; a layout-2 store has no checksum to check).

    The final norm's input, where stored (``pre_final_norm == "stored"``), is read by
    :meth:`read_pre_final_norm` and its siblings, never as a layer;
    :func:`repgeom.activations.source.final_norm_view` puts it in place of the last layer."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"activation store {self.path} does not exist")
        self.root = zarr.open_group(str(self.path), mode="r")
        self.attrs: dict[str, Any] = dict(self.root.attrs)
        if self.attrs.get("store_layout") not in READABLE_LAYOUTS:
            raise OldStoreError(
                f"{self.path} was written in an older activation-store layout (before it opened "
                "with xarray); extract it again: delete it and rerun snakemake (a code change "
                "reruns extraction anyway)"
            )
        self.checksummed = self.attrs["store_layout"] >= 3
        self.layers = [int(v) for v in self._whole("layer")]
        if WIDE in self.root:
            self._whole("layer_float32")  # its chunks checked before layer_location reads it
        self._location = {layer: layer_location(self.root, layer) for layer in self.layers}
        _, self.n_tokens, self.hidden_size = self.root[TOKENS].shape
        self.token_id = self._whole("token_id")
        self.sequence = self._whole("token_sequence")
        self.position = self._whole("position")
        # the final norm's input: (array, slot) and the layer it is of, where stored
        self._pre: tuple[zarr.Array, int] | None = None
        self.final_norm_layer: int | None = None
        if PRE in self.root:
            self.final_norm_layer = int(self._whole(PRE_LAYER)[0])
            self._pre = (self.root[PRE_WIDE] if PRE_WIDE in self.root else self.root[PRE], 0)
        self.pre_final_norm = pre_final_norm_state(self.attrs, self._pre is not None)

    def _whole(self, name: str) -> np.ndarray:
        """A whole (small) array of the store, its chunks checked."""
        arr = self.root[name]
        return np.asarray(checked_read(self.path, arr, lambda: arr[...]))

    def _rows(
        self, arr: zarr.Array, slot: int, read: Any, rows: range | np.ndarray | None = None
    ) -> np.ndarray:
        """``read()`` of rows of one slot of a (layer, row, hidden) array, its chunks checked;
        ``rows``: the rows it reads (None: all), to find a corrupt chunk among theirs."""
        step = arr.chunks[1]
        if rows is None:
            chunks = None
        elif isinstance(rows, range):
            chunks = range(rows.start // step, -(-rows.stop // step))
        else:
            chunks = np.unique(np.asarray(rows) // step).tolist()
        return checked_read(self.path, arr, read, [[slot], chunks, None])

    def provenance(self) -> dict[str, Any]:
        """What a dataset derived from the store records of it: model, step, corpus, their
        sources and the checkpoint's weight fingerprint (those the store has)."""
        return {k: self.attrs[k] for k in PROVENANCE_KEYS if k in self.attrs}

    def _where(self, layer: int) -> tuple[zarr.Array, int]:
        if layer not in self._location:
            raise KeyError(f"layer {layer} is not in {self.path} (layers {self.layers})")
        return self._location[layer]

    @property
    def n_sentences(self) -> int:
        """Number of sequences (sentences or windows) in the store."""
        return int(self.root[MEANS].shape[1])

    def _pre_where(self) -> tuple[zarr.Array, int]:
        if self._pre is None:
            raise KeyError(
                f"{self.path} holds no input of the final norm (pre_final_norm: "
                f"{self.pre_final_norm})"
            )
        return self._pre

    def read_sentences(self, layer: int) -> np.ndarray:
        """Mean over the non-padding tokens of each sequence, (sequence, hidden) float32."""
        arr, slot = self.root[MEANS], self.layers.index(layer)
        return np.asarray(self._rows(arr, slot, lambda: arr[slot]), dtype=np.float32)

    def dtype(self, layer: int) -> np.dtype:
        """Storage dtype of a layer (float16, or float32 where float16 overflowed)."""
        return self._where(layer)[0].dtype

    def _read_at(self, where: tuple[zarr.Array, int], rows: np.ndarray | None) -> np.ndarray:
        arr, slot = where
        if rows is None:
            x = self._rows(arr, slot, lambda: arr[slot])
        else:
            rows = np.asarray(rows)
            select = (slot, rows, slice(None))
            x = self._rows(arr, slot, lambda: arr.get_orthogonal_selection(select), rows)
        return np.asarray(x, dtype=np.float32)

    def _read_rows_at(self, where: tuple[zarr.Array, int], start: int, stop: int) -> np.ndarray:
        arr, slot = where
        rows = range(max(0, start), max(0, min(stop, self.n_tokens)))
        x = self._rows(arr, slot, lambda: arr[slot, start:stop], rows)
        return np.asarray(x, dtype=np.float32)

    def _iter_at(
        self, where: tuple[zarr.Array, int], rows: np.ndarray | None, block: int
    ) -> Iterator[np.ndarray]:
        if rows is None:
            for start in range(0, self.n_tokens, block):
                yield self._read_rows_at(where, start, start + block)
            return
        rows = np.asarray(rows)
        for start in range(0, len(rows), block):
            yield self._read_at(where, rows[start : start + block])

    def read(self, layer: int, rows: np.ndarray | None = None) -> np.ndarray:
        return self._read_at(self._where(layer), rows)

    def read_rows(self, layer: int, start: int, stop: int) -> np.ndarray:
        """Rows start:stop of a layer, float32."""
        return self._read_rows_at(self._where(layer), start, stop)

    def iter_blocks(
        self, layer: int, rows: np.ndarray | None = None, block: int = 65536
    ) -> Iterator[np.ndarray]:
        yield from self._iter_at(self._where(layer), rows, block)

    # the final norm's input at layer final_norm_layer (KeyError naming the store where it
    # is not stored), read like a layer
    def read_pre_final_norm(self, rows: np.ndarray | None = None) -> np.ndarray:
        """The final norm's input (or the given sorted rows of it), (n, hidden) float32."""
        return self._read_at(self._pre_where(), rows)

    def read_pre_final_norm_rows(self, start: int, stop: int) -> np.ndarray:
        """Rows start:stop of the final norm's input, float32."""
        return self._read_rows_at(self._pre_where(), start, stop)

    def iter_pre_final_norm_blocks(
        self, rows: np.ndarray | None = None, block: int = 65536
    ) -> Iterator[np.ndarray]:
        """Float32 blocks of the final norm's input, in token order; only ``rows`` if given."""
        yield from self._iter_at(self._pre_where(), rows, block)

    def pre_final_norm_dtype(self) -> np.dtype:
        """Storage dtype of the final norm's input (float16, or float32 beyond its range)."""
        return self._pre_where()[0].dtype

    def read_pre_final_norm_sentences(self) -> np.ndarray:
        """Mean of the final norm's input over each sequence's tokens, (sequence, hidden)."""
        self._pre_where()
        arr = self.root[PRE_MEANS]
        return np.asarray(self._rows(arr, 0, lambda: arr[0]), dtype=np.float32)
