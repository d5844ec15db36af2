"""Next-token cross-entropy accumulated in the extraction forward pass, from logits or from the
hidden states the LM head reads (chunked, so batch × length × vocabulary is never held).

The ``head`` of the functions that decode hidden states is the model's unembedding
(:class:`repgeom.activations.architectures.Unembedding`: its LM head, then the final logit
soft-capping of the families that apply one), so the loss is the model's own; any callable
from (n, d) rows to (n, V) logits is accepted.

The cross-entropy of a chunk of logits is computed in place (:func:`token_nll`): the target
logit is gathered, each row's maximum taken, ``exp(z − max)`` written over the logits and summed,
so no log-softmax or float64 copy of the logits is ever made and the work after the head's
matmul stays a few passes over one chunk. On the CPU these passes (and the top-1 token) run in
numpy, whose vectorised max, argmax and exp are 2–7× torch's on one thread
(benchmarks/bench_real_vocab.py measures the whole against the matmuls alone).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from repgeom.activations.size import CHUNK_ELEMENTS


def next_token_loss(
    logits: torch.Tensor,
    token_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
) -> tuple[float, int]:
    """Summed next-token negative log-likelihood (nats, float64) and number of predicted tokens.

    Causal-LM shift: logits at position t (B, T, V) score token t + 1. A prediction counts only
    when both position t and position t + 1 are real tokens (attention_mask 1), so right and
    left padding are excluded. Only the kept rows are converted to float32 (never computed in
    float16); the per-token losses are summed in float64. The mean eval loss over a pass is
    Σ sum_nll / Σ n_tokens.
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
    nll, _ = token_nll(logits[:, :-1][keep], token_ids[:, 1:][keep])  # [keep] copies
    return float(nll.double().sum()), n


def token_nll(
    logits: torch.Tensor, targets: torch.Tensor, top: bool | torch.Tensor = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """−log softmax(logits)[target] of each row (n, V), float32, and the top-1 token (first
    maximum) of the rows ``top`` selects (True: all, a bool mask: those rows, False: none).

    Overwrites ``logits`` when they are float32: pass a tensor nothing else reads. Raises
    FloatingPointError when a row holds NaN or +inf (its maximum is not finite) or a loss is not
    finite, ValueError for a target outside the vocabulary.
    """
    target = targets.long()
    if (target < 0).any() or (target >= logits.shape[-1]).any():
        raise ValueError(f"token ids outside [0, {logits.shape[-1]}) at non-padding positions")
    z = logits.float()  # float16/bfloat16 logits: one float32 copy, never computed in half
    picked = z.gather(1, target[:, None]).squeeze(1)
    passes = nll_in_place_numpy if z.device.type == "cpu" else nll_in_place_torch
    return passes(z, picked, top)


def nll_in_place_numpy(
    z: torch.Tensor, picked: torch.Tensor, top: bool | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`token_nll`'s passes over CPU logits ``z`` (overwritten) in numpy, whose max, argmax
    and exp are 2-7x torch's on one thread; ``picked``: each row's target logit."""
    zn = z.detach().numpy()
    best = None
    if top is not False:
        best = torch.from_numpy((zn if top is True else zn[top.numpy()]).argmax(axis=1))
    peak = zn.max(axis=1, keepdims=True)
    check_finite(torch.from_numpy(peak))
    np.subtract(zn, peak, out=zn)
    np.exp(zn, out=zn)
    nll = torch.from_numpy(np.log(zn.sum(axis=1)) + peak[:, 0]) - picked
    check_finite(nll)
    return nll, best


def nll_in_place_torch(
    z: torch.Tensor, picked: torch.Tensor, top: bool | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`token_nll`'s passes over logits ``z`` (overwritten) on any device, in torch."""
    best = None if top is False else (z if top is True else z[top]).argmax(dim=1)
    peak = z.amax(dim=1)
    check_finite(peak)
    z.sub_(peak[:, None]).exp_()
    nll = z.sum(dim=1).log_().add_(peak).sub_(picked)
    check_finite(nll)
    return nll, best


def check_finite(values: torch.Tensor) -> None:
    """FloatingPointError unless every value is finite (row maxima or losses of logits)."""
    if not torch.isfinite(values).all():
        raise FloatingPointError("logits hold NaN or infinite values at non-padding positions")


def chunk_bounds(n: int, vocab_size: int, chunk_elements: int = CHUNK_ELEMENTS) -> list[slice]:
    """Row slices of n rows decoded together: at most ``chunk_elements // V`` rows each, split
    evenly (no small last chunk, whose matmul would run at a fraction of the speed)."""
    if n == 0:
        return []
    most = max(1, chunk_elements // vocab_size)
    parts = -(-n // most)
    size = -(-n // parts)
    return [slice(s, min(n, s + size)) for s in range(0, n, size)]


def head_token_nll(
    head: Callable[[torch.Tensor], torch.Tensor],
    rows: torch.Tensor,
    targets: torch.Tensor,
    vocab_size: int,
    top: bool | torch.Tensor = False,
    chunk_elements: int = CHUNK_ELEMENTS,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`token_nll` of ``head(rows)`` (n, d), a chunk of rows at a time (:func:`chunk_bounds`):
    the loss of every row, and the top-1 token of the rows ``top`` selects."""
    nll, best = [], []
    for s in chunk_bounds(len(rows), vocab_size, chunk_elements):
        sel = top if isinstance(top, bool) else top[s]
        loss, b = token_nll(head(rows[s]), targets[s], sel)
        nll.append(loss)
        if b is not None:
            best.append(b)
    empty = rows.new_zeros(0)
    out_nll = torch.cat(nll) if nll else empty
    if top is False:
        return out_nll, None
    return out_nll, torch.cat(best) if best else empty.long()


def predicting_nll(
    head: Callable[[torch.Tensor], torch.Tensor],
    hidden: torch.Tensor,
    token_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    vocab_size: int,
    top: bool | torch.Tensor = False,
    chunk_elements: int = CHUNK_ELEMENTS,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-token loss of every position that predicts a real next token, in (row, position)
    order, and the top-1 token of those ``top`` selects (a mask over the same positions)."""
    if hidden.shape[:2] != token_ids.shape or attention_mask.shape != token_ids.shape:
        raise ValueError(
            f"hidden {tuple(hidden.shape)}, token_ids {tuple(token_ids.shape)} and "
            f"attention_mask {tuple(attention_mask.shape)} do not match"
        )
    valid = attention_mask.bool()
    keep = valid[:, :-1] & valid[:, 1:]
    rows = hidden[:, :-1][keep]
    targets = token_ids[:, 1:][keep]
    return head_token_nll(head, rows, targets, vocab_size, top, chunk_elements)
