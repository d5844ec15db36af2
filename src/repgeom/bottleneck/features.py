"""Frozen final representations and their next-token targets, streamed from Zarr in blocks.

The rank-restricted heads (:mod:`repgeom.bottleneck.heads`) read features h ∈ ℝᵈ (the input of
the model's unembedding, :class:`repgeom.activations.architectures.Unembedding`: the hidden
state after the final norm) with next-token targets y. Both splits use
the activation-store layout of :mod:`repgeom.activations.store` (``hidden_state`` (layer,
token, d), and the int64 coordinates ``token_id``, ``token_sequence`` and ``position`` over tokens):

- eval: the spine's activation store of the eval split (every layer);
- train: :func:`write_final_features` writes one layer only (a store of the same layout), for a
  seeded sample of train windows, batch by batch (float16, float32 where a value exceeds the
  float16 range, as in the spine's stores), so memory does not grow with the number of tokens.

Targets (:func:`next_token_blocks`): row i's target is the token of row i + 1 when both rows
belong to the same sequence and row i + 1 is the next position; the last token of each window has
no target and is skipped. Blocks are read by slices, index arrays included, so a pass over a
store holds one block in memory whatever its size.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from repgeom.activations.store import ActivationStore, StoreWriter
from repgeom.data.tokens import Windows
from repgeom.io import checked_read


def final_layer(attrs: dict[str, Any], layers: list[int]) -> tuple[int, str]:
    """The layer holding the LM head's input, and how it was chosen (for dataset attrs).

    ``attrs["final_norm_index"]`` (written by extraction) is the hidden state after the final
    norm; −1 (or absent) means the model has no final norm, and the last layer is used.
    """
    if not layers:
        raise ValueError("the store holds no layer")
    idx = int(attrs.get("final_norm_index", -1))
    if idx >= 0:
        if idx not in layers:
            raise ValueError(f"final_norm_index {idx} is not a layer of the store ({layers})")
        return idx, "hidden state after the model's final norm (the LM head's input)"
    return max(layers), (
        "the model has no final norm (final_norm_index = -1): the last layer is used, which is "
        "not exactly the LM head's input"
    )


def target_counts(lengths: np.ndarray) -> np.ndarray:
    """Next-token targets per window: length − 1 (0 for empty windows)."""
    return np.maximum(np.asarray(lengths, dtype=np.int64) - 1, 0)


def sample_windows(path: str | Path, split: str, n_targets: int, seed: int = 0) -> Windows:
    """A seeded uniform sample of a split's windows holding at least ``n_targets`` targets.

    Windows are drawn without replacement in a random order and kept (in store order) until
    their targets reach ``n_targets``; every window when the split holds fewer (the heads then
    make several passes).
    """
    if n_targets < 1:
        raise ValueError(f"n_targets must be ≥ 1, got {n_targets}")
    root = zarr.open_group(str(path), mode="r")
    if split not in root:
        raise KeyError(f"{path} has no split {split!r}; it has {sorted(root.group_keys())}")
    group = root[split]
    lengths = np.asarray(checked_read(path, group["lengths"], lambda: group["lengths"][:]))
    counts = target_counts(lengths)
    if counts.sum() == 0:
        raise ValueError(f"the {split} split of {path} has no window of two tokens or more")
    order = np.random.default_rng(np.random.SeedSequence([seed, 3])).permutation(len(lengths))
    n = int(np.searchsorted(np.cumsum(counts[order]), n_targets)) + 1
    rows = np.sort(order[: min(n, len(order))])
    ids = checked_read(
        path, group["ids"], lambda: group["ids"].get_orthogonal_selection((rows, slice(None)))
    )
    return Windows(np.asarray(ids), lengths[rows])


def write_final_features(
    model: Any,
    windows: Windows,
    layer: int,
    out_path: str | Path,
    batch_size: int,
    attrs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the hidden state ``layer`` of every non-padding token of ``windows`` to a store.

    Runs the model's base (no LM-head logits) batch by batch; raises FloatingPointError on
    NaN/inf, naming the checkpoint (``model/step`` from ``attrs``). The store has the
    activation-store layout with the single layer ``layer``.
    """
    import torch

    from repgeom.activations.extraction import (
        append_layer,
        batches_in_order,
        checkpoint_name,
        forward_batches,
        token_index,
    )
    from repgeom.io import atomic_path

    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    base = model.base_model
    d = int(model.config.hidden_size)
    batches = batches_in_order(len(windows.lengths), batch_size)
    checkpoint = checkpoint_name(model, attrs)
    with (
        atomic_path(out_path) as tmp,
        torch.inference_mode(),
        StoreWriter(tmp, [layer], d, token_index(windows)) as store,
    ):
        (writer,) = store.tokens
        for rows, _, valid, out in forward_batches(base, windows, batches, "features"):
            states = out.hidden_states
            if not 0 <= layer < len(states):
                raise ValueError(f"layer {layer} is not among the model's {len(states)} states")
            x = states[layer][valid].float()
            append_layer(writer, x, layer, int(rows[0]), checkpoint, model.dtype)
        summary = {"n_tokens": windows.n_tokens, "n_sequences": len(windows.lengths)}
        summary.update(layer=layer, layer_dtype=str(writer.dtype), hidden_size=d)
        store.close({**(attrs or {}), **summary})
    return summary


def next_token_blocks(
    path: str | Path, layer: int, block: int = 8192
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(features (n, d) float32, next-token ids (n,) int64) of a store, block by block.

    Reads ``block`` rows at a time (and one more token id for the block's last row); rows
    without a next token in the same sequence are dropped.
    """
    if block < 1:
        raise ValueError(f"block must be ≥ 1, got {block}")
    store = ActivationStore(path)  # every read checked against its chunk's checksum
    n = store.n_tokens
    for start in range(0, n, block):
        stop = min(n, start + block)
        ahead = min(n, stop + 1)
        tok = store.token_id[start:ahead]
        seq = store.sequence[start:ahead]
        pos = store.position[start:ahead]
        m = stop - start
        has_next = np.zeros(m, dtype=bool)
        k = ahead - start - 1  # rows whose successor was read
        has_next[:k] = (seq[1 : k + 1] == seq[:k]) & (pos[1 : k + 1] == pos[:k] + 1)
        if not has_next.any():
            continue
        nxt = np.full(m, -1, dtype=np.int64)
        nxt[:k] = tok[1 : k + 1]
        x = store.read_rows(layer, start, stop)[has_next]
        yield x, nxt[has_next]
