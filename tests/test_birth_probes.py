"""Memory-recall probes and attention probes against hand-built weights and brute force."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from repgeom.birth.probes import (
    induction_mass,
    induction_targets,
    previous_token_mass,
    probe_wk1,
    probe_wk2,
    probe_wo2,
)


def orthonormal_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return q[:n]


def orthogonal(rng: np.random.Generator, d: int) -> np.ndarray:
    return orthonormal_rows(rng, d, d)


# ---------------------------------------------------------------- W_O²


def test_probe_wo2_hand_built_memory():
    rng = np.random.default_rng(0)
    v, d = 30, 64
    emb, unembed = orthonormal_rows(rng, v, d), orthonormal_rows(rng, v, d)
    wv2 = orthogonal(rng, d)
    values = emb @ wv2.T  # rows v_j = W_V² e_j
    tokens = np.arange(5, 25)
    # W_O² = Σ_j u_j v_jᵀ over the stored tokens
    wo2 = unembed[tokens].T @ values[tokens]
    assert probe_wo2(emb, wv2, wo2, unembed, tokens) == 1.0
    # tokens not stored are not recalled
    assert probe_wo2(emb, wv2, wo2, unembed, np.arange(0, 5)) == 0.0
    # W_O² stores u_π(j) and the final map x ↦ x + W_F x sends u_π(j) back to u_j: the probe
    # must read the whole path W_U (I + W_F) W_O² W_V²
    perm = np.roll(np.arange(v), 1)
    wo2_perm = unembed[perm][tokens].T @ values[tokens]
    m = unembed.T @ unembed[perm] + np.eye(d) - unembed.T @ unembed  # u_π(j) → u_j
    assert probe_wo2(emb, wv2, wo2_perm, unembed, tokens, ffn=m - np.eye(d)) == 1.0
    assert probe_wo2(emb, wv2, wo2_perm, unembed, tokens) == 0.0


def test_probe_wo2_gaussian_superposition():
    # random Gaussian embeddings in high dimension are near-orthogonal: outer-product memory works
    rng = np.random.default_rng(1)
    v, d = 40, 512
    emb = rng.standard_normal((v, d)) / np.sqrt(d)
    unembed = rng.standard_normal((v, d)) / np.sqrt(d)
    wv2 = rng.standard_normal((d, d)) / np.sqrt(d)
    tokens = np.arange(v)
    wo2 = unembed.T @ (emb @ wv2.T)
    assert probe_wo2(torch.tensor(emb), wv2, wo2, unembed, tokens) == 1.0


def test_probe_wo2_random_is_chance():
    v, d = 50, 32
    vals = []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        m = [rng.standard_normal((d, d)) / np.sqrt(d) for _ in range(2)]
        emb, unembed = rng.standard_normal((v, d)), rng.standard_normal((v, d))
        vals.append(probe_wo2(emb, m[0], m[1], unembed, np.arange(v)))
    assert abs(np.mean(vals) - 1 / v) < 0.015


# ---------------------------------------------------------------- W_K²


def test_probe_wk2_hand_built_memory():
    rng = np.random.default_rng(2)
    v, d = 20, 48
    emb = orthonormal_rows(rng, v, d)
    wv1, wo1 = orthogonal(rng, d), orthogonal(rng, d)
    w1 = emb @ wv1.T @ wo1.T  # rows: what layer 1 writes after token k
    wk2 = emb.T @ w1  # Σ_k e_k w1(k)ᵀ: query e_k matches key w1(k)
    assert probe_wk2(emb, wv1, wo1, wk2, np.arange(v)) == 1.0
    assert probe_wk2(emb, wv1, wo1, wk2, np.array([3, 7, 11])) == 1.0
    # a memory that maps every key to the wrong query fails everywhere
    wrong = emb.T @ np.roll(w1, 1, axis=0)
    assert probe_wk2(emb, wv1, wo1, wrong, np.arange(v)) == 0.0


def test_probe_wk2_random_is_chance():
    v, d = 50, 32
    vals = []
    for seed in range(40):
        rng = np.random.default_rng(100 + seed)
        wv1, wo1, wk2 = (rng.standard_normal((d, d)) / np.sqrt(d) for _ in range(3))
        vals.append(probe_wk2(rng.standard_normal((v, d)), wv1, wo1, wk2, np.arange(v)))
    assert abs(np.mean(vals) - 1 / v) < 0.015


# ---------------------------------------------------------------- W_K¹


def test_probe_wk1_hand_built_memory():
    rng = np.random.default_rng(3)
    t, d = 40, 64
    pos = orthonormal_rows(rng, t, d)
    wk1 = pos[1:].T @ pos[:-1]  # Σ_t p_t p_{t-1}ᵀ
    assert probe_wk1(pos, wk1) == 1.0
    # Gaussian positions in high dimension
    pos = rng.standard_normal((t, 1024))
    assert probe_wk1(torch.tensor(pos), pos[1:].T @ pos[:-1]) == 1.0
    # remembering t → t - 2 instead gives nothing (apart from no position)
    pos = orthonormal_rows(rng, t, d)
    assert probe_wk1(pos, pos[2:].T @ pos[:-2]) == 0.0


def test_probe_wk1_random_is_chance():
    t, d = 40, 32
    vals = []
    for seed in range(40):
        rng = np.random.default_rng(200 + seed)
        vals.append(probe_wk1(rng.standard_normal((t, d)), rng.standard_normal((d, d))))
    assert abs(np.mean(vals) - 1 / (t - 1)) < 0.015


def test_probe_errors():
    rng = np.random.default_rng(0)
    e = rng.standard_normal((5, 4))
    w = rng.standard_normal((4, 4))
    with pytest.raises(ValueError, match="NaN"):
        probe_wk1(np.full((5, 4), np.nan), w)
    with pytest.raises(ValueError, match="tokens"):
        probe_wo2(e, w, w, e, np.array([7]))
    with pytest.raises(ValueError, match="2-D"):
        probe_wk2(e[0], w, w, w, np.arange(5))
    with pytest.raises(ValueError, match="empty"):
        probe_wk2(e, w, w, w, np.array([], dtype=int))


# ---------------------------------------------------------------- attention probes


def random_causal_attention(rng: np.random.Generator, b: int, t: int) -> np.ndarray:
    s = rng.standard_normal((b, t, t)) * 2
    s[:, np.triu_indices(t, 1)[0], np.triu_indices(t, 1)[1]] = -np.inf
    a = np.exp(s - s.max(axis=2, keepdims=True))
    return a / a.sum(axis=2, keepdims=True)


def test_previous_token_mass_brute_force():
    rng = np.random.default_rng(4)
    a = random_causal_attention(rng, 3, 12)
    ref = np.mean([a[b, t, t - 1] for b in range(3) for t in range(1, 12)])
    assert previous_token_mass(a) == pytest.approx(ref, rel=1e-12)
    # a perfect previous-token head (the first query can only attend to itself)
    perfect = np.zeros((2, 6, 6))
    perfect[:, 0, 0] = 1.0
    perfect[:, np.arange(1, 6), np.arange(0, 5)] = 1.0
    assert previous_token_mass(perfect) == 1.0


def brute_induction(a, tokens, positions=None):
    vals = []
    b_n, t_n = tokens.shape
    for b in range(b_n):
        for t in range(t_n):
            keys = [s for s in range(1, t + 1) if tokens[b, s - 1] == tokens[b, t]]
            if not keys or (positions is not None and not positions[b, t]):
                continue
            vals.append(sum(a[b, t, s] for s in keys))
    return np.mean(vals) if vals else np.nan


def test_induction_mass_brute_force():
    rng = np.random.default_rng(5)
    tokens = rng.integers(0, 4, size=(3, 15))
    a = random_causal_attention(rng, 3, 15)
    assert induction_mass(a, tokens) == pytest.approx(brute_induction(a, tokens), rel=1e-12)
    pos = rng.random((3, 15)) < 0.5
    got = induction_mass(a, tokens, pos, induction_targets(tokens))
    assert got == pytest.approx(brute_induction(a, tokens, pos), rel=1e-12)
    assert np.isnan(induction_mass(a, np.arange(15)[None].repeat(3, 0)))


def test_induction_mass_perfect_head():
    tokens = np.array([[0, 1, 2, 3, 0, 1, 2, 3]])
    a = np.zeros((1, 8, 8))
    a[0, np.arange(8), np.arange(8)] = 1.0  # fallback: attend to self
    for t in range(4, 8):  # token at t first appeared at t - 4: attend to t - 3
        a[0, t] = 0.0
        a[0, t, t - 3] = 1.0
    assert induction_mass(a, tokens) == 1.0
    assert induction_targets(tokens)[0, 4].tolist() == [0, 1, 0, 0, 0, 0, 0, 0]
