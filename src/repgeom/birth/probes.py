"""Associative-memory recall probes and attention-pattern probes (Bietti et al. 2023, §6).

Matrices follow the column-vector convention: a matrix ``W`` (d_out, d_in) maps x to W x, as
``nn.Linear.weight`` does. Embeddings are rows: ``emb[i]`` is the embedding of token i.
Every memory probe returns the fraction of keys whose stored value is recovered by an argmax.
"""

from __future__ import annotations

import numpy as np
import torch


def _as_f64(name: str, a: np.ndarray | torch.Tensor, ndim: int) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().to("cpu", torch.float64).numpy()
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf")
    return a


def _ids(name: str, ids: np.ndarray, n: int) -> np.ndarray:
    ids = np.asarray(ids, dtype=np.int64).ravel()
    if ids.size == 0:
        raise ValueError(f"{name} is empty")
    if ids.min() < 0 or ids.max() >= n:
        raise ValueError(f"{name} must lie in [0, {n}), got range [{ids.min()}, {ids.max()}]")
    return ids


def probe_wo2(
    emb: np.ndarray | torch.Tensor,
    wv2: np.ndarray | torch.Tensor,
    wo2: np.ndarray | torch.Tensor,
    unembed: np.ndarray | torch.Tensor,
    tokens: np.ndarray,
    ffn: np.ndarray | torch.Tensor | None = None,
) -> float:
    """Output memory of layer 2: fraction of j ∈ ``tokens`` with argmax_i (W_U W_O² W_V² e_j)_i = j.

    ``tokens`` are the ids that can be trigger outputs in training. The argmax runs over the
    whole vocabulary (rows of ``unembed``). With a final linear feed-forward map W_F (the
    residual update x ↦ x + W_F x before the output matrix) the path is W_U (I + W_F) W_O² W_V²,
    since layer 2's output reaches the logits only through it.
    """
    emb = _as_f64("emb", emb, 2)
    u = _as_f64("unembed", unembed, 2)
    ids = _ids("tokens", tokens, emb.shape[0])
    out = emb[ids] @ _as_f64("wv2", wv2, 2).T @ _as_f64("wo2", wo2, 2).T
    if ffn is not None:
        out = out + out @ _as_f64("ffn", ffn, 2).T
    vals = out @ u.T
    return float((vals.argmax(axis=1) == ids).mean())


def probe_wk2(
    emb: np.ndarray | torch.Tensor,
    wv1: np.ndarray | torch.Tensor,
    wo1: np.ndarray | torch.Tensor,
    wk2: np.ndarray | torch.Tensor,
    tokens: np.ndarray,
) -> float:
    """Key memory of layer 2: share of k with argmax_k' e_kᵀ W_K² W_O¹ W_V¹ e_k' = k.

    The query is the token embedding e_k (W_Q = I); the keys are what layer 1 writes at the
    position after a k' (W_O¹ W_V¹ e_k') seen through W_K². Both k and k' range over
    ``tokens`` (the triggers for fixed triggers, all tokens otherwise).
    """
    emb = _as_f64("emb", emb, 2)
    ids = _ids("tokens", tokens, emb.shape[0])
    e = emb[ids]
    keys = e @ _as_f64("wv1", wv1, 2).T @ _as_f64("wo1", wo1, 2).T @ _as_f64("wk2", wk2, 2).T
    return float(((e @ keys.T).argmax(axis=1) == np.arange(ids.size)).mean())


def probe_wk1(pos: np.ndarray | torch.Tensor, wk1: np.ndarray | torch.Tensor) -> float:
    """Positional memory of layer 1: fraction of t ∈ [1, T) with argmax_s p_tᵀ W_K¹ p_s = t − 1.

    The argmax runs over s ∈ [0, T − 1) with no causal mask (all keys compete).
    """
    p = _as_f64("pos", pos, 2)
    if p.shape[0] < 2:
        raise ValueError(f"pos needs at least 2 positions, got {p.shape[0]}")
    keys = p[:-1] @ _as_f64("wk1", wk1, 2).T
    scores = p[1:] @ keys.T
    return float((scores.argmax(axis=1) == np.arange(p.shape[0] - 1)).mean())


def previous_token_mass(attn: np.ndarray | torch.Tensor) -> float:
    """Mean attention weight of query t on key t − 1, over queries t ≥ 1 and the batch.

    ``attn`` is (B, T, T) (rows: queries, sums to 1 over causal keys).
    """
    a = _as_f64("attn", attn, 3)
    if a.shape[1] < 2 or a.shape[1] != a.shape[2]:
        raise ValueError(f"attn must be (B, T, T) with T ≥ 2, got shape {a.shape}")
    return float(np.diagonal(a, offset=-1, axis1=1, axis2=2).mean())


def induction_targets(tokens: np.ndarray) -> np.ndarray:
    """Boolean (B, T, T): key s follows an earlier occurrence of the token at query t.

    ``mask[b, t, s]`` is true when s ≥ 1, s ≤ t and ``tokens[b, s-1] == tokens[b, t]`` with
    s − 1 < t.
    """
    x = np.asarray(tokens)
    if x.ndim != 2:
        raise ValueError(f"tokens must be (B, T), got shape {x.shape}")
    b, t = x.shape
    same = x[:, :, None] == x[:, None, :]  # (B, query t, earlier position s')
    earlier = np.tril(np.ones((t, t), dtype=bool), k=-1)  # s' < t
    prev = same & earlier[None]
    mask = np.zeros((b, t, t), dtype=bool)
    mask[:, :, 1:] = prev[:, :, :-1]  # key s = s' + 1
    return mask


def induction_mass(
    attn: np.ndarray | torch.Tensor,
    tokens: np.ndarray,
    positions: np.ndarray | None = None,
    targets: np.ndarray | None = None,
) -> float:
    """Mean attention mass on positions right after earlier occurrences of the query's token.

    For each query t the mass is summed over every key s with ``tokens[s-1] == tokens[t]``,
    s − 1 < t (all earlier occurrences count, as they all precede the same output for a
    trigger). Averaged over queries that have at least one earlier occurrence and, if given,
    for which ``positions`` (B, T) bool is true. NaN when no query qualifies. ``targets``:
    ``induction_targets(tokens)`` if already computed.
    """
    a = _as_f64("attn", attn, 3)
    mask = induction_targets(tokens) if targets is None else np.asarray(targets, dtype=bool)
    if mask.shape != a.shape:
        raise ValueError(f"attn shape {a.shape} does not match tokens shape {mask.shape[:2]}")
    has = mask.any(axis=2)
    if positions is not None:
        pos = np.asarray(positions, dtype=bool)
        if pos.shape != has.shape:
            raise ValueError(f"positions must have shape {has.shape}, got {pos.shape}")
        has &= pos
    if not has.any():
        return float("nan")
    return float((a * mask).sum(axis=2)[has].mean())
