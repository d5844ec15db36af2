"""Disk and memory a run needs, computed from model sizes (no torch import).

- An HF-cache revision holds the weights in the dtype they were saved in: parameters × bytes.
- An activation store holds every layer's hidden states (embedding output included) in float16
  (float32 only for a layer beyond float16's range) plus float32 sentence means.
- An extraction job holds the weights in ``extraction.dtype``, the hidden states of every layer
  for one batch (float32), the widest intermediate of one layer (MLP or attention scores), one
  chunk of logits when it computes the eval loss, the bucket of sentences it writes back in
  order, and the Python/torch runtime itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "F32": 4, "F16": 2, "BF16": 2}
RUNTIME_BYTES = 1 << 30  # Python, torch and transformers loaded (about 0.9 GB measured)
# logits decoded at once for the eval loss: 2**25 float32 = 128 MiB (50k vocabulary: 670 tokens)
CHUNK_ELEMENTS = 2**25
# hidden states of one bucket of sentences held before they are written in corpus order
BUCKET_BYTES = 512 * 2**20


@dataclass(frozen=True)
class ModelSize:
    """What sizes a model's footprint: parameters, dims, and the dtype its weights are saved in."""

    n_params: int
    n_layers: int
    hidden_size: int
    n_heads: int
    intermediate_size: int
    vocab_size: int
    saved_dtype: str = "float32"

    @classmethod
    def from_config(cls, config: Mapping[str, Any], n_params: int) -> ModelSize:
        """From a config.json and the parameter count (the dims' names of every family)."""

        def first(*keys: str, default: int | None = None) -> int:
            for key in keys:
                if config.get(key) is not None:
                    return int(config[key])
            if default is None:
                raise KeyError(f"config.json has none of {keys}")
            return default

        hidden = first("hidden_size", "n_embd", "d_model")
        return cls(
            n_params=n_params,
            n_layers=first("num_hidden_layers", "n_layer", "num_layers"),
            hidden_size=hidden,
            n_heads=first("num_attention_heads", "n_head"),
            intermediate_size=first("intermediate_size", "n_inner", default=4 * hidden),
            vocab_size=first("vocab_size"),
            saved_dtype=str(config.get("torch_dtype") or config.get("dtype") or "float32"),
        )


def weights_bytes(size: ModelSize, dtype: str | None = None) -> int:
    """Bytes of the weights in ``dtype`` (default: the dtype they were saved in)."""
    return size.n_params * DTYPE_BYTES[dtype or size.saved_dtype]


def store_bytes(size: ModelSize, n_tokens: int, n_sequences: int) -> int:
    """Bytes of one activation store: float16 tokens and float32 sentence means of every layer,
    and the int64 token id, sequence and position of every token (before compression)."""
    layers = size.n_layers + 1
    return layers * size.hidden_size * (2 * n_tokens + 4 * n_sequences) + 3 * 8 * n_tokens


def extraction_bytes(
    size: ModelSize,
    dtype: str,
    batch_size: int,
    window: int,
    eval_loss: bool,
    sentences: bool,
) -> int:
    """Peak memory of one extraction job (see the module docstring for what it holds);
    ``sentences``: a corpus of one row per sentence, written back in order bucket by bucket."""
    positions = batch_size * window
    states = (size.n_layers + 1) * positions * size.hidden_size * 4
    widest = max(positions * size.intermediate_size, batch_size * size.n_heads * window * window)
    logits = 2 * CHUNK_ELEMENTS * 4 if eval_loss else 0
    return (
        RUNTIME_BYTES
        + weights_bytes(size, dtype)
        + states
        + 2 * widest * 4
        + logits
        + (BUCKET_BYTES if sentences else 0)
    )


def safetensors_params(paths: list[Path]) -> tuple[int, str] | None:
    """(floating-point parameters, their widest dtype) from safetensors headers (read without
    loading any tensor)."""
    from repgeom.activations.checkpoint import safetensors_header

    n, dtypes = 0, set()
    for path in paths:
        header = safetensors_header(path)
        for name, info in header.items():
            if name == "__metadata__" or info["dtype"] not in DTYPE_BYTES:
                continue  # integer buffers (position ids) are no parameters
            count = 1
            for dim in info["shape"]:
                count *= int(dim)
            n += count
            dtypes.add(info["dtype"])
    if not n:
        return None
    main = max(dtypes, key=lambda d: DTYPE_BYTES.get(d, 0))
    return n, {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}.get(main, "float32")


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
