"""Model architectures the workflow trains, and loading of checkpoints from disk or the hub."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from transformers import PreTrainedModel

# name -> (config class, model-with-head class, objective)
ARCHITECTURES: dict[str, tuple[str, str, str]] = {
    "gpt_neox": ("GPTNeoXConfig", "GPTNeoXForCausalLM", "causal"),
    "gpt2": ("GPT2Config", "GPT2LMHeadModel", "causal"),
    "llama": ("LlamaConfig", "LlamaForCausalLM", "causal"),
    "bert": ("BertConfig", "BertForMaskedLM", "masked"),
    "roberta": ("RobertaConfig", "RobertaForMaskedLM", "masked"),
}


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


def objective(model: PreTrainedModel) -> str:
    """'causal' or 'masked', from the model's head class."""
    name = type(model).__name__
    if "MaskedLM" in name:
        return "masked"
    if "CausalLM" in name or "LMHeadModel" in name:
        return "causal"
    raise ValueError(f"{name} is neither a causal nor a masked language model")


@dataclass(frozen=True)
class Checkpoint:
    """Where one checkpoint comes from: a local directory, or a hub id at a revision."""

    path_or_id: str
    revision: str | None = None

    def load(self, dtype: str = "float32", device: str = "cpu") -> PreTrainedModel:
        """The model with its LM head, in eval mode."""
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM

        cfg = AutoConfig.from_pretrained(self.path_or_id, revision=self.revision)
        archs = " ".join(cfg.architectures or [])
        cls = AutoModelForMaskedLM if "MaskedLM" in archs else AutoModelForCausalLM
        model = cls.from_pretrained(
            self.path_or_id, revision=self.revision, dtype=getattr(torch, dtype)
        )
        return model.to(device).eval()


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} asked for but no CUDA device is visible")
    return device
