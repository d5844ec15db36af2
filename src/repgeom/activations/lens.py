"""Decoding hidden states with a causal LM's own head: the eval loss and the logit lens.

The logit lens (nostalgebraist 2020) decodes the hidden state after each layer with the model's
unembedding (:class:`repgeom.activations.architectures.Unembedding`: its LM head, then the final
logit soft-capping of the families that apply one, as the model's own logits). Two decodings
are kept, per layer:

- ``final_norm``: the model's final norm, then its unembedding — what the model itself does to
  its last hidden state, and the right reading of a pre-LN model's residual stream;
- ``no_norm``: the unembedding alone (LLM-Microscope's form), labelled as such.

The last hidden state of a transformers decoder is already after the final norm, so it is
decoded once, by the unembedding alone, for both forms (its ``final_norm`` loss is the model's eval
loss on the same positions). The lens runs on a token budget: a seeded subsample
(:func:`lens_positions`) of at most ``logit_lens.tokens`` of the positions that predict a real
next token, chosen from the windows' lengths before any forward pass, so its cost does not grow
with the tokens extracted. For each of them it keeps, per layer and decoding, the next-token
cross-entropy (nats) and whether its top-1 token is the model's own final prediction; the
results are their means and standard errors. Rows are decoded a chunk at a time
(:func:`repgeom.activations.loss.head_token_nll`), never tokens × vocabulary per layer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import PreTrainedModel

# the model's unembedding and final norm (causal_logits, final_norm re-exported for extraction)
from repgeom.activations.architectures import causal_logits, final_norm
from repgeom.activations.loss import head_token_nll
from repgeom.activations.size import CHUNK_ELEMENTS
from repgeom.sampling import seeded_subsample

DECODINGS = ("final_norm", "no_norm")
RESULTS = ("loss", "agreement", "loss_se", "agreement_se")
CHECK_POSITIONS = 32  # positions of the one window the head is checked on


def check_head(
    model: PreTrainedModel,
    logits: Callable[[torch.Tensor], torch.Tensor],
    hidden: torch.Tensor,
    ids: torch.Tensor,
    valid: torch.Tensor,
) -> None:
    """The decoded last hidden state equals the model's own logits on the first CHECK_POSITIONS
    tokens of one window (a causal model's prefix: raises otherwise, the family transforms its
    logits in a way repgeom does not know)."""
    n = min(int(valid[0].sum()), CHECK_POSITIONS)
    own = model(input_ids=ids[:1, :n], attention_mask=valid[:1, :n].long()).logits[0].float()
    ours = logits(hidden[0, :n]).float()
    tol = 1e-3 if hidden.dtype == torch.float32 else 5e-2
    if not torch.allclose(ours, own, rtol=tol, atol=tol * float(own.abs().max())):
        raise ValueError(
            f"the LM head of {type(model).__name__} applied to its last hidden state does not "
            "give the model's own logits; the eval loss and the logit lens cannot be computed "
            "for this family (set extraction.eval_loss: false and leave the model out of "
            "bottleneck.models and logit_lens.models)"
        )


@dataclass(frozen=True)
class LensSample:
    """The lens's token budget: at most ``tokens`` predicting positions, drawn with ``seed``."""

    tokens: int
    seed: int


def lens_positions(lengths: np.ndarray, width: int, sample: LensSample) -> np.ndarray:
    """(rows, width − 1) mask of the positions the lens decodes: the seeded subsample
    (:func:`repgeom.metrics.layerwise.seeded_subsample`) of at most ``sample.tokens`` of the
    positions t that predict a real next token (t + 1 < the row's length), known from the
    lengths alone."""
    predicting = np.arange(width - 1)[None, :] < (np.asarray(lengths)[:, None] - 1)
    flat = np.flatnonzero(predicting)
    mask = np.zeros(predicting.shape, dtype=bool)
    mask.flat[flat[seeded_subsample(len(flat), sample.tokens, sample.seed)]] = True
    return mask


def mean_and_se(values: np.ndarray) -> tuple[float, float]:
    """Mean of per-token values (float64) and its standard error std/√n (ddof 1; NaN below 2)."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    mean = float(values.mean())
    return mean, float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan


class LogitLens:
    """Per-token next-token loss and top-1 agreement with the model's final prediction of every
    layer in both decodings, on the positions it is given (buffered, then decoded a chunk of
    rows at a time)."""

    def __init__(
        self, model: PreTrainedModel, n_states: int, chunk_elements: int = CHUNK_ELEMENTS
    ) -> None:
        self.logits = causal_logits(model)  # the model's Unembedding, soft-cap included
        self.norm = final_norm(model, needed="leave it out of logit_lens.models")
        self.vocab = int(model.config.vocab_size)
        self.n_states = n_states
        self.chunk_elements = chunk_elements
        self.rows_per_chunk = max(1, chunk_elements // self.vocab)
        self.pending: list[tuple[list[torch.Tensor], torch.Tensor, tuple | None]] = []
        self.pending_rows = 0
        self.nll: list[list[list[np.ndarray]]] = [[[], []] for _ in range(n_states)]
        self.hit: list[list[list[np.ndarray]]] = [[[], []] for _ in range(n_states)]
        self.count = 0

    def update(
        self,
        states: Sequence[torch.Tensor],
        ids: torch.Tensor,
        selected: torch.Tensor,
        final: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        """Add one batch: ``states`` every layer's (B, T, d), the last after the final norm;
        ``selected`` (B, T − 1) the positions to decode, each predicting a real next token;
        ``final`` the last layer's loss and top-1 token there when already decoded (the eval
        loss's pass), else the last layer is decoded here."""
        n = int(selected.sum())
        if n == 0:
            return
        layers = states if final is None else states[:-1]
        rows = [h[:, :-1][selected] for h in layers]
        self.pending.append((rows, ids[:, 1:][selected], final))
        self.pending_rows += n
        if self.pending_rows >= self.rows_per_chunk:
            self.flush()

    def flush(self) -> None:
        """Decode every buffered row."""
        if not self.pending:
            return
        targets = torch.cat([t for _, t, _ in self.pending])
        last = self.n_states - 1
        known = [f for _, _, f in self.pending if f is not None]
        if known:
            if len(known) != len(self.pending):
                raise ValueError("the last layer's decoding must be given for every batch or none")
            final_nll = torch.cat([f[0] for f in known])
            final_top = torch.cat([f[1] for f in known])
        else:
            rows = torch.cat([r[last] for r, _, _ in self.pending])
            final_nll, final_top = head_token_nll(
                self.logits, rows, targets, self.vocab, True, self.chunk_elements
            )
        for j in range(len(DECODINGS)):
            self.nll[last][j].append(final_nll.double().cpu().numpy())
            self.hit[last][j].append(np.ones(len(targets), dtype=bool))
        for i in range(last):
            h = torch.cat([r[i] for r, _, _ in self.pending])
            for j, decoding in enumerate(DECODINGS):
                z = self.norm(h) if decoding == "final_norm" else h
                nll, top = head_token_nll(
                    self.logits, z, targets, self.vocab, True, self.chunk_elements
                )
                self.nll[i][j].append(nll.double().cpu().numpy())
                self.hit[i][j].append((top == final_top).cpu().numpy())
        self.count += len(targets)
        self.pending, self.pending_rows = [], 0

    def results(self) -> dict[str, np.ndarray]:
        """Mean loss (nats/token) and top-1 agreement per (layer, decoding), with their standard
        errors (``loss_se``, ``agreement_se``: std/√n of the per-token values)."""
        self.flush()
        out = {k: np.full((self.n_states, len(DECODINGS)), np.nan) for k in RESULTS}
        for i in range(self.n_states):
            for j in range(len(DECODINGS)):
                for key, parts in (("loss", self.nll[i][j]), ("agreement", self.hit[i][j])):
                    values = np.concatenate(parts).astype(np.float64) if parts else np.zeros(0)
                    out[key][i, j], out[f"{key}_se"][i, j] = mean_and_se(values)
        return out
