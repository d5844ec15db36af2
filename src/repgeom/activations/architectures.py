"""What repgeom knows about transformer architectures, in one place.

- :data:`ARCHITECTURES`: the families the workflow trains (config class, model-with-head class,
  objective);
- :func:`head_objective` / :func:`objective`: 'causal', 'masked' or 'none' from a model class
  name / a loaded model (:func:`repgeom.activations.checkpoint.declared_objective` reads the
  class names a config.json declares with it);
- :func:`final_norm`: the module a loaded model applies to its last hidden state;
- :func:`transformer_layers`: a loaded model's blocks;
- :class:`Unembedding`: a causal LM's map from its last hidden state (after the final norm) to
  its logits: the LM head's weight and bias, then the final soft-capping of the families that
  apply one (Gemma 2: ``final_logit_softcapping``), ``cap · tanh(logits / cap)`` exactly as
  transformers computes it. The eval loss, the logit lens, the rank-restricted heads and the
  LM-head spectrum all start from it.

torch is imported only inside the functions that need a loaded model: planning code reads
:data:`ARCHITECTURES` and :func:`head_objective` (through
:mod:`repgeom.activations.checkpoint`) without paying the torch import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel

# architectures the workflow trains: name -> (config class, model-with-head class, objective)
ARCHITECTURES: dict[str, tuple[str, str, str]] = {
    "gpt_neox": ("GPTNeoXConfig", "GPTNeoXForCausalLM", "causal"),
    "gpt2": ("GPT2Config", "GPT2LMHeadModel", "causal"),
    "llama": ("LlamaConfig", "LlamaForCausalLM", "causal"),
    "phi3": ("Phi3Config", "Phi3ForCausalLM", "causal"),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", "causal"),
    "bert": ("BertConfig", "BertForMaskedLM", "masked"),
    "roberta": ("RobertaConfig", "RobertaForMaskedLM", "masked"),
}

# attributes of the base model holding the final norm (GPT-NeoX, GPT-2, Llama-likes, Phi)
FINAL_NORM_NAMES = ("final_layer_norm", "ln_f", "norm", "final_layernorm")
# dotted paths, from the base model, of the list of blocks (Llama-likes/GPT-NeoX, GPT-2, BERT)
LAYER_PATHS = ("layers", "h", "encoder.layer")
# the config key of the final logit soft-capping (Gemma 2 and its descendants)
SOFTCAP_KEY = "final_logit_softcapping"


def head_objective(class_name: str) -> str:
    """'causal', 'masked' or 'none' from a transformers model class name; ValueError otherwise."""
    if class_name.endswith(("ForCausalLM", "LMHeadModel")):
        return "causal"
    if class_name.endswith("ForMaskedLM"):
        return "masked"
    if class_name.endswith("Model") and "For" not in class_name:
        return "none"
    raise ValueError(
        f"{class_name} has a head repgeom does not use (it reads causal LMs, masked LMs and "
        "bare models); to extract its hidden states as a bare model set the model's "
        "'objective: none' in the config"
    )


def objective(model: PreTrainedModel) -> str:
    """'causal', 'masked' or 'none' (a bare model), from the loaded model's class."""
    return head_objective(type(model).__name__)


def final_norm(model: PreTrainedModel, needed: str | None = None) -> torch.nn.Module | None:
    """The module the base model applies to its last hidden state, or None (post-LN encoders);
    with ``needed`` (what to do without one), ValueError naming the model instead of None."""
    import torch

    base = model.base_model
    for name in FINAL_NORM_NAMES:
        module = getattr(base, name, None)
        if isinstance(module, torch.nn.Module):
            return module
    if needed:
        raise ValueError(
            f"{type(model).__name__} has no final norm repgeom can find (looked for "
            f"{', '.join(FINAL_NORM_NAMES)}); {needed}"
        )
    return None


def transformer_layers(model: PreTrainedModel) -> torch.nn.ModuleList:
    """The base model's blocks, in order (ValueError naming the paths tried otherwise)."""
    import torch

    for path in LAYER_PATHS:
        module = model.base_model
        for part in path.split("."):
            module = getattr(module, part, None)
        if isinstance(module, torch.nn.ModuleList):
            return module
    raise ValueError(
        f"{type(model).__name__} has no list of transformer layers repgeom can find (looked "
        f"for {', '.join(LAYER_PATHS)} on its base model)"
    )


def soft_cap(logits: torch.Tensor, cap: float | None) -> torch.Tensor:
    """``cap · tanh(logits / cap)`` (transformers' final logit soft-capping, same operations in
    the same order), or ``logits`` themselves when ``cap`` is None."""
    import torch

    if cap is None:
        return logits
    return torch.tanh(logits / cap) * cap


def logit_softcap(config: object) -> float | None:
    """The final logit soft-cap a model config declares, or None; ValueError unless positive."""
    cap = getattr(config, SOFTCAP_KEY, None)
    if cap is None:
        return None
    if not float(cap) > 0:
        raise ValueError(f"{SOFTCAP_KEY} must be positive or null, got {cap!r}")
    return float(cap)


class Unembedding:
    """A causal LM's unembedding: logits = soft_cap(W h + b, cap) of its last hidden state h.

    ``head`` is the model's output embedding (its LM head: ``weight`` (V, d), ``bias`` (V,) or
    None); ``softcap`` the model's final logit soft-cap (None: the family applies none).
    Calling it is :meth:`logits`.
    """

    def __init__(self, head: torch.nn.Module, softcap: float | None = None) -> None:
        self.head = head
        self.softcap = softcap

    @classmethod
    def of(cls, model: PreTrainedModel, name: str | None = None) -> Unembedding:
        """The unembedding of a loaded causal LM; ValueError naming the model (``name``, else
        its class) when it loads as a masked LM or a bare model."""
        kind = objective(model)
        head = model.get_output_embeddings() if kind == "causal" else None
        if head is None:
            what = type(model).__name__
            what = f"model {name!r} loads as {what}" if name else what
            raise ValueError(
                f"{what} ({kind}): it has no causal LM head, which the eval loss, the logit lens "
                "and the softmax-bottleneck study need"
            )
        return cls(head, logit_softcap(model.config))

    @property
    def weight(self) -> torch.Tensor:
        """The LM head's weight W (V, d), as the model holds it (tied or not)."""
        return self.head.weight

    @property
    def bias(self) -> torch.Tensor | None:
        """The LM head's bias b (V,), or None."""
        return getattr(self.head, "bias", None)

    @property
    def vocab_size(self) -> int:
        """Rows of W: the logits' width."""
        return int(self.weight.shape[0])

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """The model's logits (…, V) of last hidden states (…, d): its head, then its soft-cap."""
        return soft_cap(self.head(hidden), self.softcap)

    __call__ = logits

    def describe(self) -> str:
        """How the logits are formed, for dataset attrs."""
        head = "W h + b" if self.bias is not None else "W h"
        if self.softcap is None:
            return head
        return f"{self.softcap:g} * tanh(({head}) / {self.softcap:g}) ({SOFTCAP_KEY})"


def causal_logits(model: PreTrainedModel) -> Unembedding:
    """The map from the last hidden state to a causal LM's logits: :meth:`Unembedding.of`."""
    return Unembedding.of(model)
