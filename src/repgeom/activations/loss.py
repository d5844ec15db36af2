"""Next-token cross-entropy accumulated in the extraction forward pass, from logits or from the
hidden states the LM head reads (chunked, so batch × length × vocabulary is never held)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from repgeom.workflow.footprint import CHUNK_ELEMENTS


def next_token_loss(
    logits: torch.Tensor,
    token_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
) -> tuple[float, int]:
    """Summed next-token negative log-likelihood (nats, float64) and number of predicted tokens.

    Causal-LM shift: logits at position t (B, T, V) score token t + 1. A prediction counts only
    when both position t and position t + 1 are real tokens (attention_mask 1), so right and
    left padding are excluded. Only the kept rows are converted to float32 for the log-softmax
    (never computed in float16); the per-token losses are summed in float64. The mean eval loss
    over a pass is Σ sum_nll / Σ n_tokens.
    """
    if logits.ndim != 3:
        raise ValueError(f"logits must have shape (batch, position, vocab), got {logits.shape}")
    if token_ids.shape != logits.shape[:2]:
        raise ValueError(
            f"token_ids shape {tuple(token_ids.shape)} does not match logits "
            f"{tuple(logits.shape[:2])}"
        )
    if attention_mask is None:
        valid = torch.ones_like(token_ids, dtype=torch.bool)
    else:
        if attention_mask.shape != token_ids.shape:
            raise ValueError(
                f"attention_mask shape {tuple(attention_mask.shape)} does not match token_ids "
                f"{tuple(token_ids.shape)}"
            )
        valid = attention_mask.bool()
    keep = valid[:, :-1] & valid[:, 1:]
    n = int(keep.sum())
    if n == 0:
        return 0.0, 0
    return summed_nll(logits[:, :-1][keep], token_ids[:, 1:][keep]), n


def summed_nll(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Σ −log softmax(logits)[target] over rows (n, V), in float32, summed in float64."""
    rows = logits.float()
    if not torch.isfinite(rows).all():
        raise FloatingPointError("logits hold NaN or infinite values at non-padding positions")
    target = targets.long()
    if (target < 0).any() or (target >= logits.shape[-1]).any():
        raise ValueError(f"token ids outside [0, {logits.shape[-1]}) at non-padding positions")
    lp = torch.log_softmax(rows, dim=-1)
    return float(-lp.gather(-1, target.unsqueeze(-1)).squeeze(-1).double().sum())


def head_next_token_loss(
    head: Callable[[torch.Tensor], torch.Tensor],
    hidden: torch.Tensor,
    token_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    vocab_size: int,
    chunk_elements: int = CHUNK_ELEMENTS,
) -> tuple[float, int]:
    """:func:`next_token_loss` of ``head(hidden)`` without holding every position's logits.

    ``hidden`` (B, T, d) is what the LM head reads (the base model's last hidden state);
    ``head`` maps (n, d) to (n, V) logits. Only the positions that predict a real next token
    are decoded, ``chunk_elements // V`` of them at a time.
    """
    if hidden.shape[:2] != token_ids.shape or attention_mask.shape != token_ids.shape:
        raise ValueError(
            f"hidden {tuple(hidden.shape)}, token_ids {tuple(token_ids.shape)} and "
            f"attention_mask {tuple(attention_mask.shape)} do not match"
        )
    valid = attention_mask.bool()
    keep = valid[:, :-1] & valid[:, 1:]
    rows = hidden[:, :-1][keep]
    targets = token_ids[:, 1:][keep].long()
    step = max(1, chunk_elements // vocab_size)
    total = 0.0
    for s in range(0, len(rows), step):
        total += summed_nll(head(rows[s : s + step]), targets[s : s + step])
    return total, len(rows)
