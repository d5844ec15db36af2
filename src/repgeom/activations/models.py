"""Models the workflow trains, and checkpoints loaded as what they are (causal LM, masked LM or a
bare model), never with a weight initialised because the checkpoint lacked it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel

from repgeom.activations.architectures import ARCHITECTURES
from repgeom.activations.architectures import objective as objective  # re-exported
from repgeom.activations.checkpoint import declared_objective

# weights a bare model may lack without changing a hidden state (BERT's pooler reads [CLS] only)
UNUSED_PREFIXES = ("pooler.",)


class CheckpointError(ValueError):
    """A checkpoint cannot be loaded as what it declares; the message says what to do."""


def _transformers_attr(name: str) -> Any:
    import transformers

    return getattr(transformers, name)


def build_model(
    architecture: str, config: dict[str, Any], tokenizer: Any, seed: int
) -> PreTrainedModel:
    """A randomly initialised model of a registered architecture, seeded, sized to the tokenizer."""
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"unknown architecture {architecture!r}; choose one of {sorted(ARCHITECTURES)}"
        )
    cfg_name, model_name, _ = ARCHITECTURES[architecture]
    kwargs = dict(config)
    kwargs.setdefault("vocab_size", len(tokenizer))
    for key, attr in (
        ("bos_token_id", "bos_token_id"),
        ("eos_token_id", "eos_token_id"),
        ("pad_token_id", "pad_token_id"),
    ):
        if getattr(tokenizer, attr, None) is not None:
            kwargs.setdefault(key, getattr(tokenizer, attr))
    cfg = _transformers_attr(cfg_name)(**kwargs)
    torch.manual_seed(seed)
    return _transformers_attr(model_name)(cfg)


AUTO_CLASSES = {
    "causal": "AutoModelForCausalLM",
    "masked": "AutoModelForMaskedLM",
    "none": "AutoModel",
}


@dataclass(frozen=True)
class Checkpoint:
    """Where one checkpoint comes from: a local directory, or a hub id at a revision."""

    path_or_id: str
    revision: str | None = None
    as_objective: str = "auto"

    @classmethod
    def from_source(cls, source: dict[str, Any]) -> Checkpoint:
        """The checkpoint a rule's ``model_source`` params describe."""
        return cls(source["path"], source["revision"], source.get("objective", "auto"))

    def _json(self, name: str) -> Any:
        """A JSON file of the checkpoint (local, or through the HF cache/hub), or None."""
        local = Path(self.path_or_id)
        if local.is_dir():
            path = local / name
            return json.loads(path.read_text()) if path.is_file() else None
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError

        try:
            return json.loads(
                Path(hf_hub_download(self.path_or_id, name, revision=self.revision)).read_text()
            )
        except EntryNotFoundError:
            return None  # not in the repository, or (offline) not in the cache

    def subfolder(self) -> str:
        """Where the transformer lives: '' or a sentence-transformers module folder."""
        from repgeom.activations.checkpoint import transformer_subfolder

        return transformer_subfolder(self._json("modules.json"))

    def load(self, dtype: str = "float32", device: str = "cpu") -> PreTrainedModel:
        """The model, in eval mode, with the head its config.json declares (``as_objective``
        'none' loads the bare model of any checkpoint). Raises CheckpointError when a weight
        the model needs is missing from the checkpoint or has another shape."""
        as_objective = self.as_objective
        from transformers import AutoConfig

        sub = self.subfolder()
        where = f"{self.path_or_id}" + (f"@{self.revision}" if self.revision else "")
        where += f" ({sub}/)" if sub else ""
        cfg = AutoConfig.from_pretrained(self.path_or_id, revision=self.revision, subfolder=sub)
        if getattr(cfg, "is_encoder_decoder", False):
            raise CheckpointError(
                f"checkpoint {where} is an encoder-decoder model ({cfg.model_type}); repgeom "
                "reads decoders, encoders and bare models"
            )
        try:
            declared = declared_objective(cfg.architectures)
        except ValueError as err:
            if as_objective != "none":
                raise CheckpointError(f"checkpoint {where}: {err}") from None
            declared = "none"
        kind = declared if as_objective == "auto" else as_objective
        if kind not in AUTO_CLASSES:
            raise ValueError(f"as_objective must be auto or one of {sorted(AUTO_CLASSES)}")
        model, info = _transformers_attr(AUTO_CLASSES[kind]).from_pretrained(
            self.path_or_id,
            revision=self.revision,
            subfolder=sub,
            dtype=getattr(torch, dtype),
            output_loading_info=True,
        )
        missing = sorted(k for k in info["missing_keys"] if not k.startswith(UNUSED_PREFIXES))
        mismatched = sorted(str(k) for k in info.get("mismatched_keys") or [])
        if missing or mismatched:
            declares = ", ".join(cfg.architectures or []) or "no architectures"
            parts = []
            if missing:
                parts.append(f"missing: {', '.join(missing[:8])}" + (" …" if missing[8:] else ""))
            if mismatched:
                parts.append(f"shape differs: {', '.join(mismatched[:8])}")
            raise CheckpointError(
                f"checkpoint {where} declares {declares} but its weights do not match a "
                f"{type(model).__name__} ({'; '.join(parts)}); those weights would be random. "
                "Fix the checkpoint, or read only its hidden states with the model's "
                "'objective: none'"
            )
        return model.to(device).eval()


def check_dtype(dtype: str, device: str) -> None:
    """Refuse float16 on the CPU (slow, and inexact where float32 accumulation is missing)."""
    if dtype == "float16" and not str(device).startswith("cuda"):
        raise ValueError(
            "config key 'extraction.dtype': float16 needs a CUDA device (CPU float16 matmul is "
            "hundreds of times slower and loses accuracy); use bfloat16 or float32"
        )
