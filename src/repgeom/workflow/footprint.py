"""Disk and memory a run needs, computed from model sizes (no torch import).

- An HF-cache revision holds the weights in the dtype they were saved in: parameters × bytes.
- An activation store holds every layer's hidden states (embedding output included) in float16
  (float32 only for a layer beyond float16's range) plus float32 sentence means.
- An extraction job holds the weights in ``extraction.dtype``, the hidden states of every layer
  for one batch (float32), the widest intermediate of one layer (MLP or attention scores), one
  chunk of logits when it computes the eval loss (at most one batch's), the bucket of sentences
  it writes back in order (at most the store's float16 hidden states), and the Python/torch
  runtime itself (:data:`RUNTIME_BYTES` for the memory Snakemake reserves; the projection
  passes the start-up it measured).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from repgeom.activations.size import BUCKET_BYTES, CHUNK_ELEMENTS, DTYPE_BYTES, ModelSize

RUNTIME_BYTES = 1 << 30  # Python, torch and transformers loaded (about 0.9 GB measured)


def weights_bytes(size: ModelSize, dtype: str | None = None) -> int:
    """Bytes of the weights in ``dtype`` (default: the dtype they were saved in)."""
    return size.n_params * DTYPE_BYTES[dtype or size.saved_dtype]


def store_bytes(size: ModelSize, n_tokens: int, n_sequences: int, layers: int = 0) -> int:
    """Bytes of one activation store: float16 tokens and float32 sentence means of every layer
    (or of ``layers`` of them), and the int64 token id, sequence and position of every token
    (before compression)."""
    layers = layers or size.n_layers + 1
    return layers * size.hidden_size * (2 * n_tokens + 4 * n_sequences) + 3 * 8 * n_tokens


def extraction_bytes(
    size: ModelSize,
    dtype: str,
    batch_size: int,
    window: int,
    eval_loss: bool,
    sentences: bool,
    runtime: int = RUNTIME_BYTES,
    tokens: int | None = None,
) -> int:
    """Peak memory of one extraction job (see the module docstring for what it holds);
    ``sentences``: a corpus of one row per sentence, written back in order bucket by bucket;
    ``runtime``: the process before its work; ``tokens``: the store's (when known, the bucket
    holds at most its hidden states)."""
    positions = batch_size * window
    states = (size.n_layers + 1) * positions * size.hidden_size * 4
    widest = max(positions * size.intermediate_size, batch_size * size.n_heads * window * window)
    logits = 2 * min(CHUNK_ELEMENTS, positions * size.vocab_size) * 4 if eval_loss else 0
    bucket = BUCKET_BYTES
    if tokens is not None:
        bucket = min(bucket, (size.n_layers + 1) * tokens * size.hidden_size * 2)
    return (
        runtime
        + weights_bytes(size, dtype)
        + states
        + 2 * widest * 4
        + logits
        + (bucket if sentences else 0)
    )


def extraction_mem_mb(
    model: Mapping[str, Any],
    step: str,
    extraction: Mapping[str, Any],
    window: int,
    eval_loss: bool,
    sentences: bool,
    default: int = 6000,
) -> int:
    """``mem_mb`` of one extraction job: :func:`extraction_bytes` of the checkpoint's size when
    its config.json and safetensors weights are on disk, else ``default``."""
    from repgeom.activations.checkpoint import checkpoint_size

    size = None if model["source"] == "train" else checkpoint_size(model, step)
    if size is None:
        return default
    need = extraction_bytes(
        size, extraction["dtype"], extraction["batch_size"], window, eval_loss, sentences
    )
    return max(2000, -(-need // 2**20))


if __name__ == "__main__":  # python -m repgeom.workflow.footprint CONFIG: a run's cost
    from repgeom.workflow.projection import main

    main()
