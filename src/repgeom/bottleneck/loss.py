"""Next-token cross-entropy accumulated in the extraction forward pass."""

from __future__ import annotations

import torch


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
    rows = logits[:, :-1][keep].float()
    if not torch.isfinite(rows).all():
        raise FloatingPointError("logits hold NaN or infinite values at non-padding positions")
    target = token_ids[:, 1:][keep].long()
    if (target < 0).any() or (target >= logits.shape[-1]).any():
        raise ValueError(f"token ids outside [0, {logits.shape[-1]}) at non-padding positions")
    lp = torch.log_softmax(rows, dim=-1)
    nll = -lp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    return float(nll.double().sum()), n
