"""Decoding hidden states with a causal LM's own head: the eval loss and the logit lens.

The logit lens (nostalgebraist 2020) decodes the hidden state after each layer with the model's
unembedding. Two decodings are kept, per layer:

- ``final_norm``: the model's final norm, then its LM head — what the model itself does to its
  last hidden state, and the right reading of a pre-LN model's residual stream;
- ``no_norm``: the LM head alone (LLM-Microscope's form), labelled as such.

The last hidden state of a transformers decoder is already after the final norm, so it is
decoded by the head alone in both forms (its ``final_norm`` loss is the model's eval loss). For
every position that predicts a real next token, the lens keeps the next-token cross-entropy
(nats) and whether its top-1 token is the model's own final prediction. Only ``chunk_elements``
logits exist at a time (a chunk of positions of one layer), never tokens × vocabulary per layer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from transformers import PreTrainedModel

from repgeom.activations.loss import summed_nll
from repgeom.workflow.footprint import CHUNK_ELEMENTS

DECODINGS = ("final_norm", "no_norm")
FINAL_NORM_NAMES = ("final_layer_norm", "ln_f", "norm", "final_layernorm")


def final_norm(model: PreTrainedModel) -> torch.nn.Module | None:
    """The module the base model applies to its last hidden state, or None (post-LN encoders)."""
    base = model.base_model
    for name in FINAL_NORM_NAMES:
        module = getattr(base, name, None)
        if isinstance(module, torch.nn.Module):
            return module
    return None


def causal_logits(model: PreTrainedModel) -> Callable[[torch.Tensor], torch.Tensor]:
    """The map from the last hidden state to a causal LM's logits: its output embedding, with
    the final soft-capping of the families that apply one."""
    head = model.get_output_embeddings()
    if head is None:
        raise ValueError(f"{type(model).__name__} has no output embedding (LM head)")
    cap = getattr(model.config, "final_logit_softcapping", None)

    def logits(h: torch.Tensor) -> torch.Tensor:
        out = head(h)
        return torch.tanh(out / cap) * cap if cap else out

    return logits


def check_head(
    model: PreTrainedModel,
    logits: Callable[[torch.Tensor], torch.Tensor],
    hidden: torch.Tensor,
    ids: torch.Tensor,
    valid: torch.Tensor,
) -> None:
    """The decoded last hidden state equals the model's own logits on one window (raises
    otherwise: the family transforms its logits in a way repgeom does not know)."""
    n = int(valid[0].sum())
    own = model(input_ids=ids[:1, :n], attention_mask=valid[:1, :n].long()).logits[0].float()
    ours = logits(hidden[0, :n]).float()
    tol = 1e-3 if hidden.dtype == torch.float32 else 5e-2
    if not torch.allclose(ours, own, rtol=tol, atol=tol * float(own.abs().max())):
        raise ValueError(
            f"the LM head of {type(model).__name__} applied to its last hidden state does not "
            "give the model's own logits; the eval loss and the logit lens cannot be computed "
            "for this family (set extraction.eval_loss: false and extraction.logit_lens: false)"
        )


class LogitLens:
    """Sums, per layer and decoding, the next-token loss and the top-1 agreement with the
    model's final prediction over every batch it is given."""

    def __init__(
        self, model: PreTrainedModel, n_states: int, chunk_elements: int = CHUNK_ELEMENTS
    ) -> None:
        self.logits = causal_logits(model)
        self.norm = final_norm(model)
        if self.norm is None:
            raise ValueError(
                f"{type(model).__name__} has no final norm repgeom can find (looked for "
                f"{', '.join(FINAL_NORM_NAMES)}); set extraction.logit_lens: false"
            )
        self.vocab = int(model.config.vocab_size)
        self.step = max(1, chunk_elements // self.vocab)
        self.nll = np.zeros((n_states, len(DECODINGS)))
        self.agree = np.zeros((n_states, len(DECODINGS)), dtype=np.int64)
        self.count = 0

    def decode(self, h: torch.Tensor, layer: int, decoding: str, last: int) -> torch.Tensor:
        """Logits of hidden states ``h`` (n, d) of one layer in one decoding."""
        if decoding == "final_norm" and layer != last:
            h = self.norm(h)
        return self.logits(h)

    def update(
        self, states: Sequence[torch.Tensor], ids: torch.Tensor, valid: torch.Tensor
    ) -> None:
        """Add one batch: ``states`` every layer's (B, T, d), the last after the final norm."""
        keep = valid[:, :-1] & valid[:, 1:]
        targets = ids[:, 1:][keep].long()
        rows = [h[:, :-1][keep] for h in states]
        last = len(states) - 1
        for s in range(0, len(targets), self.step):
            chunk = slice(s, s + self.step)
            final = self.logits(rows[last][chunk]).argmax(dim=-1)
            for i, h in enumerate(rows):
                for j, decoding in enumerate(DECODINGS):
                    z = self.decode(h[chunk], i, decoding, last)
                    self.nll[i, j] += summed_nll(z, targets[chunk])
                    self.agree[i, j] += int((z.argmax(dim=-1) == final).sum())
        self.count += len(targets)

    def results(self) -> dict[str, np.ndarray]:
        """Mean loss (nats/token) and top-1 agreement per (layer, decoding)."""
        n = max(1, self.count)
        return {"loss": self.nll / n, "agreement": self.agree / n}
