"""Masked mean pooling: padding never enters, independent of the padding length."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from repgeom.metrics.anisotropy import anisotropy
from repgeom.pooling import masked_mean, unpadded_tokens


def _batch(rng, lengths, d, pad_to, pad_value=0.0):
    hidden = np.full((len(lengths), pad_to, d), pad_value, dtype=np.float32)
    mask = np.zeros((len(lengths), pad_to), dtype=np.int64)
    tokens = [rng.normal(size=(n, d)).astype(np.float32) + 3.0 for n in lengths]
    for i, t in enumerate(tokens):
        hidden[i, : len(t)] = t
        mask[i, : len(t)] = 1
    return hidden, mask, tokens


def loop_mean(tokens):
    out = []
    for t in tokens:
        acc = [0.0] * t.shape[1]
        for row in t:
            for j, v in enumerate(row):
                acc[j] += float(v)
        out.append([a / len(t) for a in acc])
    return np.array(out)


def test_masked_mean_equals_loop_mean():
    rng = np.random.default_rng(0)
    hidden, mask, tokens = _batch(rng, [3, 7, 1, 5], 4, pad_to=9)
    ref = loop_mean(tokens)
    out = masked_mean(hidden, mask)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=1e-6)
    np.testing.assert_allclose(masked_mean(hidden.astype(np.float64), mask), ref, rtol=1e-12)
    t = masked_mean(torch.from_numpy(hidden).to(torch.bfloat16), torch.from_numpy(mask))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    np.testing.assert_allclose(t.numpy(), ref, rtol=2e-2)
    t64 = masked_mean(torch.from_numpy(hidden.astype(np.float64)), torch.from_numpy(mask).bool())
    np.testing.assert_allclose(t64.numpy(), ref, rtol=1e-12)


def test_masked_mean_independent_of_padding_length_and_value():
    rng = np.random.default_rng(1)
    h1, m1, tokens = _batch(rng, [2, 6, 4], 5, pad_to=6)
    h2 = np.full((3, 40, 5), np.nan, dtype=np.float32)  # longer padding, NaN in it
    m2 = np.zeros((3, 40), dtype=np.int64)
    h2[:, :6], m2[:, :6] = h1, m1
    np.testing.assert_array_equal(masked_mean(h1, m1), masked_mean(h2, m2))
    t = masked_mean(torch.from_numpy(h2), torch.from_numpy(m2))
    np.testing.assert_allclose(t.numpy(), masked_mean(h1, m1), rtol=1e-6)


def test_zero_padded_rows_would_change_anisotropy():
    rng = np.random.default_rng(2)
    lengths = rng.integers(2, 12, size=40).tolist()
    hidden, mask, tokens = _batch(rng, lengths, 8, pad_to=12)
    pooled = masked_mean(hidden, mask)
    naive = hidden.mean(axis=1)  # zero padding enters the mean: length becomes a direction
    assert abs(anisotropy(naive) - anisotropy(pooled)) > 0.05
    longer = np.zeros((40, 30, 8), dtype=np.float32)
    longer[:, :12] = hidden
    mask30 = np.zeros((40, 30), dtype=np.int64)
    mask30[:, :12] = mask
    assert anisotropy(masked_mean(longer, mask30)) == pytest.approx(anisotropy(pooled), rel=1e-6)


def test_unpadded_tokens():
    rng = np.random.default_rng(3)
    hidden, mask, tokens = _batch(rng, [2, 3], 4, pad_to=5, pad_value=np.nan)
    np.testing.assert_array_equal(unpadded_tokens(hidden, mask), np.vstack(tokens))
    t = unpadded_tokens(torch.from_numpy(hidden), torch.from_numpy(mask))
    np.testing.assert_array_equal(t, np.vstack(tokens))


def test_masked_mean_bad_input():
    h = np.ones((2, 3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="no unmasked token"):
        masked_mean(h, np.array([[1, 1, 0], [0, 0, 0]]))
    with pytest.raises(ValueError, match="shape"):
        masked_mean(h, np.ones((2, 4)))
    with pytest.raises(ValueError, match="0/1"):
        masked_mean(h, np.full((2, 3), 2))
    bad = h.copy()
    bad[0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        masked_mean(bad, np.ones((2, 3)))
    with pytest.raises(ValueError, match="no unmasked token"):
        masked_mean(torch.from_numpy(h), torch.zeros(2, 3))
