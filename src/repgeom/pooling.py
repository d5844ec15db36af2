"""Sentence vectors from padded token batches: padding never enters the result."""

from __future__ import annotations

import numpy as np
import torch


def _check_shapes(hidden_shape: tuple[int, ...], mask_shape: tuple[int, ...]) -> None:
    if len(hidden_shape) != 3:
        raise ValueError(f"hidden must be (batch, seq, d), got shape {tuple(hidden_shape)}")
    if tuple(mask_shape) != tuple(hidden_shape[:2]):
        raise ValueError(
            f"attention_mask shape {tuple(mask_shape)} must equal hidden's (batch, seq) "
            f"{tuple(hidden_shape[:2])}"
        )


def masked_mean(
    hidden: np.ndarray | torch.Tensor, attention_mask: np.ndarray | torch.Tensor
) -> np.ndarray | torch.Tensor:
    """Mean over the unpadded tokens of each sequence: (batch, seq, d) → (batch, d).

    ``attention_mask`` is 1/True for real tokens and 0/False for padding. Padded positions are
    selected out (not multiplied by 0), so any value there, NaN included, leaves the result
    unchanged. The sum runs in float64 for float64 input and in float32 otherwise; the result
    is a numpy array for numpy input and a tensor on the input's device for tensor input.
    A sequence with no unmasked token, a mask value other than 0/1, or a NaN/inf at an unmasked
    position raises ValueError.
    """
    if isinstance(hidden, torch.Tensor):
        mask = torch.as_tensor(attention_mask, device=hidden.device)
        _check_shapes(tuple(hidden.shape), tuple(mask.shape))
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError("attention_mask must hold only 0/1 (or booleans)")
        keep = mask.bool()
        dtype = torch.float64 if hidden.dtype == torch.float64 else torch.float32
        h = hidden.to(dtype)
        counts = keep.sum(dim=1)
        _check_counts(counts.cpu().numpy())
        if not bool(torch.isfinite(h[keep]).all()):
            raise ValueError("hidden holds NaN or infinite values at unmasked positions")
        summed = torch.where(keep[..., None], h, torch.zeros((), dtype=dtype, device=h.device))
        return summed.sum(dim=1) / counts[:, None].to(dtype)
    h = np.asarray(hidden)
    mask = np.asarray(attention_mask)
    _check_shapes(h.shape, mask.shape)
    if not np.isin(mask, (0, 1)).all():
        raise ValueError("attention_mask must hold only 0/1 (or booleans)")
    keep = mask.astype(bool)
    dtype = np.float64 if h.dtype == np.float64 else np.float32
    h = h.astype(dtype, copy=False)
    counts = keep.sum(axis=1)
    _check_counts(counts)
    if not np.isfinite(h[keep]).all():
        raise ValueError("hidden holds NaN or infinite values at unmasked positions")
    summed = np.where(keep[..., None], h, dtype(0)).sum(axis=1, dtype=dtype)
    return summed / counts[:, None].astype(dtype)


def _check_counts(counts: np.ndarray) -> None:
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        raise ValueError(
            f"sequence(s) {empty.tolist()[:10]} have no unmasked token; a mean is undefined "
            "(drop empty texts before batching)"
        )


def unpadded_tokens(
    hidden: np.ndarray | torch.Tensor, attention_mask: np.ndarray | torch.Tensor
) -> np.ndarray:
    """The unmasked token vectors of a batch, in (sequence, position) order: (n_tokens, d)."""
    if isinstance(hidden, torch.Tensor):
        wide = torch.float64 if hidden.dtype == torch.float64 else torch.float32
        hidden = hidden.detach().to(wide).cpu().numpy()
    h = np.asarray(hidden)
    if isinstance(attention_mask, torch.Tensor):
        attention_mask = attention_mask.cpu().numpy()
    mask = np.asarray(attention_mask)
    _check_shapes(h.shape, mask.shape)
    if not np.isin(mask, (0, 1)).all():
        raise ValueError("attention_mask must hold only 0/1 (or booleans)")
    dtype = np.float64 if h.dtype == np.float64 else np.float32
    return h[mask.astype(bool)].astype(dtype, copy=False)
