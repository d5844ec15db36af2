"""How big a model is, from its config.json and its safetensors headers, and how much an
extraction job holds at once (no torch import)."""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "F32": 4, "F16": 2, "BF16": 2}
# logits decoded at once for the eval loss and the lens: 2**25 float32 = 128 MiB (a 50k
# vocabulary: 670 tokens)
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


def safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file, checked against the file's size (a truncated
    file is caught without reading a tensor); ValueError saying what is wrong."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"{size} bytes, shorter than a safetensors header")
        (length,) = struct.unpack("<Q", head)
        if length > size - 8:
            raise ValueError(f"its header claims {length} bytes but the file has {size}")
        try:
            header = json.loads(f.read(length))
        except ValueError as err:
            raise ValueError(f"its header is not valid JSON ({err})") from None
    end = max(
        (int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0
    )
    if 8 + length + end > size:
        raise ValueError(
            f"truncated: its tensors need {8 + length + end} bytes but the file has {size}"
        )
    return header


def safetensors_params(paths: list[Path]) -> tuple[int, str] | None:
    """(floating-point parameters, their widest dtype) from safetensors headers (read without
    loading any tensor)."""
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
