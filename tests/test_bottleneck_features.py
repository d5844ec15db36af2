"""Final-layer features and next-token targets against the model's forward pass and brute force;
the heads' memory estimate against the heads actually built."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from repgeom.activations.models import build_model
from repgeom.activations.store import ActivationStore
from repgeom.bottleneck.features import (
    final_layer,
    next_token_blocks,
    sample_windows,
    target_counts,
    write_final_features,
)
from repgeom.bottleneck.heads import HeadTraining, build_heads
from repgeom.bottleneck.memory import check_heads_memory, default_ranks, heads_memory_estimate
from repgeom.data.tokens import Windows, write_tokens
from repgeom.workflow.config import options
from tests.conftest import TINY


def ragged_windows(seed: int = 0, n: int = 7, width: int = 9, vocab: int = 50) -> Windows:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, width + 1, size=n).astype(np.int32)
    lengths[0] = width
    ids = rng.integers(3, vocab, size=(n, width)).astype(np.int32)
    return Windows(ids, lengths)


def write_store(path, windows: Windows, d: int = 4, seed: int = 1) -> np.ndarray:
    """A store in the activation-store layout with random features (returned, float16)."""
    valid = np.arange(windows.ids.shape[1])[None, :] < windows.lengths[:, None]
    n = int(valid.sum())
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float16)
    from repgeom.activations.extraction import token_index
    from repgeom.activations.store import StoreWriter

    store = StoreWriter(path, [3], d, token_index(windows))
    store.tokens[0].append(x)
    store.close({})
    return x


def brute_force_pairs(windows: Windows, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Features of every token that has a successor in its window, and that successor."""
    feats, targets, row = [], [], 0
    for ids, length in zip(windows.ids, windows.lengths, strict=True):
        for t in range(length):
            if t + 1 < length:
                feats.append(x[row])
                targets.append(ids[t + 1])
            row += 1
    return np.array(feats, dtype=np.float32), np.array(targets, dtype=np.int64)


@pytest.mark.parametrize("block", [1, 2, 5, 9, 1000])
def test_next_token_blocks_match_brute_force(tmp_path, block):
    w = ragged_windows()
    x = write_store(tmp_path / "s.zarr", w)
    blocks = list(next_token_blocks(tmp_path / "s.zarr", 3, block))
    got_x = np.concatenate([b[0] for b in blocks])
    got_y = np.concatenate([b[1] for b in blocks])
    ref_x, ref_y = brute_force_pairs(w, x)
    np.testing.assert_array_equal(got_y, ref_y)
    np.testing.assert_array_equal(got_x, ref_x)
    assert got_x.dtype == np.float32 and got_y.dtype == np.int64
    assert len(got_y) == target_counts(w.lengths).sum()
    with pytest.raises(ValueError, match="block"):
        next(next_token_blocks(tmp_path / "s.zarr", 3, 0))


def test_final_layer_choice():
    assert final_layer({"final_norm_index": 2}, [0, 1, 2])[0] == 2
    layer, note = final_layer({"final_norm_index": -1}, [0, 1, 2, 3])
    assert layer == 3 and "no final norm" in note
    with pytest.raises(ValueError, match="not a layer"):
        final_layer({"final_norm_index": 5}, [0, 1, 2])


def test_sample_windows_is_seeded_and_covers_the_budget(tmp_path):
    w = ragged_windows(n=40)
    write_tokens(tmp_path / "t.zarr", {"train": w, "eval": w}, {})
    a = sample_windows(tmp_path / "t.zarr", "train", 30, seed=3)
    b = sample_windows(tmp_path / "t.zarr", "train", 30, seed=3)
    np.testing.assert_array_equal(a.ids, b.ids)
    assert target_counts(a.lengths).sum() >= 30
    # windows are added one at a time until the budget is reached: less than one window over
    assert target_counts(a.lengths).sum() < 30 + target_counts(w.lengths).max()
    assert not np.array_equal(a.ids, sample_windows(tmp_path / "t.zarr", "train", 30, 4).ids)
    rows = {tuple(r) for r in w.ids}
    assert all(tuple(r) in rows for r in a.ids)
    everything = sample_windows(tmp_path / "t.zarr", "train", 10**9)
    assert len(everything.lengths) == 40
    with pytest.raises(KeyError, match="no split"):
        sample_windows(tmp_path / "t.zarr", "test", 5)


def test_final_features_equal_the_forward_pass(tmp_path, tokenizer, windows):
    model = build_model("gpt_neox", TINY, tokenizer, seed=0).eval()
    w = Windows(windows.ids[:5].copy(), windows.lengths[:5].copy())
    w.lengths[1] = 10  # a padded window
    info = write_final_features(model, w, 2, tmp_path / "f.zarr", batch_size=2, attrs={"a": 1})
    assert info["n_tokens"] == w.n_tokens and info["layer"] == 2
    store = ActivationStore(tmp_path / "f.zarr")
    assert store.attrs["a"] == 1 and store.layers == [2]
    stored = store.read(2)
    rows = []
    with torch.inference_mode():
        for ids, length in zip(w.ids, w.lengths, strict=True):
            x = torch.from_numpy(ids[:length].astype(np.int64))[None]
            out = model(input_ids=x, output_hidden_states=True)
            rows.append(out.hidden_states[2][0].numpy())
            # the last hidden state is the LM head's input: logits = W h
            head = model.get_output_embeddings().weight
            np.testing.assert_allclose(
                (out.hidden_states[2][0] @ head.T).numpy(), out.logits[0].numpy(), atol=1e-4
            )
    ref = np.concatenate(rows)
    np.testing.assert_allclose(stored, ref, rtol=2e-3, atol=2e-3)  # float16 storage
    tokens = np.concatenate([r[:n] for r, n in zip(w.ids, w.lengths, strict=True)])
    np.testing.assert_array_equal(store.token_id, tokens)
    positions = np.concatenate([np.arange(n) for n in w.lengths])
    np.testing.assert_array_equal(store.position, positions)


def test_memory_estimate_counts_the_heads_built():
    v, d = 40, 8
    ranks = default_ranks(d)

    def cfg(**kw):
        return options(HeadTraining, "bottleneck.heads", kw)

    built = cfg(token_budget=1000, batch_size=64, bias=True, shuffle_buffer=0)
    heads, full = build_heads(v, d, ranks, built)
    n_params = sum(p.numel() for h in [*heads.values(), full] for p in h.parameters())
    est = built.memory_estimate(v, d, block_rows=0)
    assert est == heads_memory_estimate(v, d, None, 64, 1000, 0, "random", True, block_rows=0)
    assert est["params"] == 16 * n_params  # value, gradient and two AdamW moments, float32
    assert est["logits"] == 16 * 64 * v
    assert est["losses"] == 8 * 16 * (len(ranks) + 1)
    assert est["total"] == sum(v_ for k, v_ in est.items() if k != "total")
    svd = cfg(ranks=[1, 2], batch_size=64, token_budget=1000, init="svd").memory_estimate(v, d)
    assert svd["reference"] == 36 * v * d
    check_heads_memory(est, budget=est["total"])
    with pytest.raises(MemoryError, match="lower batch_size"):
        big_batch = cfg(ranks=[1], batch_size=10**6, token_budget=10**6)
        check_heads_memory(big_batch.memory_estimate(50_000, 8), budget=10**9)
    with pytest.raises(MemoryError, match="drop the largest ranks"):
        wide = cfg(batch_size=1, token_budget=1, shuffle_buffer=0)
        check_heads_memory(wide.memory_estimate(10**6, 4096, block_rows=0), budget=10**9)
    # the ranks are checked against the head, naming the config key and the model
    with pytest.raises(ValueError, match=r"bottleneck\.heads\.ranks.*model 'm'"):
        cfg(ranks=[16]).memory_estimate(v, d, "model 'm'")
    assert cfg(ranks=[4, 1]).ranks_for(v, d) == [1, 4]


def test_final_features_with_nan_raise_and_leave_nothing(tmp_path, tokenizer, windows):
    model = build_model("gpt_neox", TINY, tokenizer, seed=0).eval()
    with torch.no_grad():
        model.gpt_neox.layers[0].mlp.dense_4h_to_h.bias.fill_(float("nan"))
    w = Windows(windows.ids[:3], windows.lengths[:3])
    with pytest.raises(FloatingPointError, match="layer 2 of checkpoint m/s .* window 0"):
        write_final_features(model, w, 2, tmp_path / "f.zarr", 2, {"model": "m", "step": "s"})
    assert list(tmp_path.iterdir()) == []


def test_checkpoint_heads_are_the_heads_of_the_model_on_its_features(tmp_path, tokenizer, windows):
    """The job's three steps: the model's unembedding and its memory checked, the features of
    the sampled train windows written, the heads trained on them and evaluated on the store;
    the same dataset as rank_restricted_heads on those features."""
    from repgeom.activations.architectures import Unembedding
    from repgeom.activations.extraction import extract
    from repgeom.bottleneck.checkpoint_heads import CheckpointHeads, eval_batches
    from repgeom.bottleneck.heads import rank_restricted_heads

    model = build_model("gpt_neox", TINY, tokenizer, seed=0).eval()
    w = Windows(windows.ids[:6], windows.lengths[:6])
    write_tokens(tmp_path / "tokens.zarr", {"train": w, "eval": w}, {})
    extract(model, w, tmp_path / "eval.zarr", 3, {"model": "m", "step": "s"}, eval_loss=True)
    store = ActivationStore(tmp_path / "eval.zarr")
    cfg = options(HeadTraining, "bottleneck.heads", dict(token_budget=90, batch_size=32, ranks=[2]))
    with pytest.raises(MemoryError, match="heads of m s"):
        CheckpointHeads.of(model, store, cfg, ("m", "s"), memory_mb=1)
    too_big = options(HeadTraining, "bottleneck.heads", dict(ranks=[64]))
    with pytest.raises(ValueError, match="bottleneck.heads.ranks.*model 'm'"):
        CheckpointHeads.of(model, store, too_big, ("m", "s"), memory_mb=None)
    job = CheckpointHeads.of(model, store, cfg, ("m", "s"), memory_mb=None)
    assert job.layer == store.attrs["final_norm_index"] == 2
    assert job.estimate == cfg.memory_estimate(*job.weight.shape)
    features = job.write_features(model, tmp_path / "tokens.zarr", tmp_path / "f.zarr", 2, {})
    ds = job.train(tmp_path / "f.zarr", features, "cpu", {"model": "m"})
    w0 = Unembedding.of(model).weight.detach().numpy()
    ref = rank_restricted_heads(
        lambda: next_token_blocks(tmp_path / "f.zarr", 2),
        eval_batches(tmp_path / "eval.zarr", 2, 32),
        *w0.shape,
        cfg,
        w0,
        device="cpu",
    )
    np.testing.assert_array_equal(ds["eval_loss"].values, ref["eval_loss"].values)
    assert float(ds["model_head_loss"]) == pytest.approx(store.attrs["eval_loss"], rel=1e-5)
    assert ds.attrs["model"] == "m" and ds.attrs["layer"] == 2
    assert ds.attrs["estimated_peak_bytes"] == job.estimate["total"]
    assert ds.attrs["n_train_windows"] == features["n_sequences"]
