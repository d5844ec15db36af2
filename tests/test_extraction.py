"""Extraction: stored hidden states equal a direct forward pass; padding never stored."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from repgeom.activations.extraction import extract
from repgeom.activations.store import ActivationStore
from repgeom.data.tokens import Windows


def direct_states(model, w: Windows) -> list[np.ndarray]:
    """Hidden states of every non-padding token, one window at a time, float32."""
    per_layer = None
    with torch.no_grad():
        for row, n in zip(w.ids, w.lengths, strict=True):
            ids = torch.from_numpy(row[:n].astype(np.int64))[None]
            states = model(input_ids=ids, output_hidden_states=True).hidden_states
            if per_layer is None:
                per_layer = [[] for _ in states]
            for i, h in enumerate(states):
                per_layer[i].append(h[0].numpy())
    return [np.concatenate(x) for x in per_layer]


def test_store_equals_direct_forward(tiny_model, windows, tmp_path):
    w = Windows(windows.ids[:10], windows.lengths[:10])
    summary = extract(tiny_model, w, tmp_path / "a.zarr", batch_size=4, attrs={"model": "m"})
    store = ActivationStore(tmp_path / "a.zarr")
    ref = direct_states(tiny_model, w)
    assert store.layers == list(range(len(ref))) and store.n_tokens == w.n_tokens
    for layer, expected in zip(store.layers, ref, strict=True):
        got = store.read(layer)
        assert store.dtype(layer) == np.float16
        np.testing.assert_allclose(
            got, expected, rtol=2**-10, atol=1e-6 + 2**-10 * np.abs(expected).max()
        )
    assert np.array_equal(store.token_id, w.ids.reshape(-1))
    assert store.position.tolist() == list(range(32)) * 10
    assert store.attrs["model"] == "m" and summary["n_tokens"] == 320
    # the final norm's input is stored only when asked (tests/test_final_norm.py)
    has_norm = store.attrs["final_norm_index"] != -1
    assert summary["pre_final_norm"] == ("not_stored" if has_norm else "none")
    assert "hidden_state_pre_final_norm" not in store.root
    blocks = list(store.iter_blocks(1, rows=np.arange(0, 320, 3), block=25))
    np.testing.assert_array_equal(np.concatenate(blocks), store.read(1)[::3])


def test_ragged_batches_store_no_padding(tiny_model, windows, tmp_path):
    lengths = np.array([32, 7, 20, 1, 32, 13], dtype=np.int32)
    ids = windows.ids[:6].copy()
    for i, n in enumerate(lengths):
        ids[i, n:] = 1  # padding id
    w = Windows(ids, lengths)
    extract(tiny_model, w, tmp_path / "r.zarr", batch_size=3, attrs={})
    store = ActivationStore(tmp_path / "r.zarr")
    assert store.n_tokens == lengths.sum()
    ref = direct_states(tiny_model, w)
    for layer in store.layers:
        np.testing.assert_allclose(
            store.read(layer), ref[layer], atol=2e-3 * max(1, np.abs(ref[layer]).max())
        )
    assert store.sequence.tolist() == np.repeat(np.arange(6), lengths).tolist()
    # batched by length: 32 32 20 | 13 7 1 → 3·32 + 3·13 positions computed
    assert store.attrs["padding_fraction"] == pytest.approx(1 - lengths.sum() / (3 * 32 + 3 * 13))


def test_buckets_are_written_in_corpus_order(tiny_model, windows, tmp_path, monkeypatch):
    """Several buckets of consecutive windows, each sorted by length: corpus order on disk."""
    from repgeom.activations import extraction

    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 33, size=23).astype(np.int32)
    ids = windows.ids[:23].copy()
    for i, n in enumerate(lengths):
        ids[i, n:] = 1
    w = Windows(ids, lengths)
    monkeypatch.setattr(extraction, "BUCKET_BYTES", 5 * 32 * 3 * 32 * 2)  # ~5 windows a bucket
    assert len(extraction.length_batches(lengths, 2, 5)) == 5
    extract(tiny_model, w, tmp_path / "b.zarr", batch_size=2, attrs={})
    store = ActivationStore(tmp_path / "b.zarr")
    ref = direct_states(tiny_model, w)
    for layer in store.layers:
        np.testing.assert_allclose(
            store.read(layer), ref[layer], atol=2e-3 * max(1, np.abs(ref[layer]).max())
        )
        means = np.stack([ref[layer][store.sequence == s].mean(0) for s in range(23)])
        np.testing.assert_allclose(store.read_sentences(layer), means, rtol=2e-3, atol=2e-3)
    assert np.array_equal(store.position, np.concatenate([np.arange(n) for n in lengths]))


def test_length_batches():
    from repgeom.activations.extraction import length_batches

    plan = length_batches(np.array([3, 9, 9, 1, 5]), 2, 3)
    assert [[b.tolist() for b in batches] for batches in plan] == [[[1, 2], [0]], [[4, 3]]]
    fixed = length_batches(np.full(5, 8), 2)
    assert [b.tolist() for b in fixed[0]] == [[0, 1], [2, 3], [4]]


def test_eval_loss_matches_model_loss(tokenizer, windows, tmp_path):
    from repgeom.activations.models import build_model
    from tests.conftest import TINY

    model = build_model("gpt_neox", TINY, tokenizer, seed=1).eval()
    w = Windows(windows.ids[:8], windows.lengths[:8])
    summary = extract(model, w, tmp_path / "e.zarr", batch_size=3, attrs={}, eval_loss=True)
    ids = torch.from_numpy(w.ids.astype(np.int64))
    with torch.no_grad():
        ref = model(input_ids=ids, labels=ids).loss.item()
    assert summary["eval_loss"] == pytest.approx(ref, rel=1e-5)
    assert summary["eval_loss_tokens"] == 8 * 31


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nonfinite_activations_raise_saying_what_is_true_and_leave_nothing(
    tokenizer, windows, tmp_path, dtype, value
):
    """Only a model computing in reduced precision is told to load in float32; one already in
    float32 or float64 is told its checkpoint produces the values, named with layer and batch."""
    from repgeom.activations.models import build_model
    from tests.conftest import TINY

    model = build_model("gpt_neox", TINY, tokenizer, seed=0).eval().to(dtype)
    with torch.no_grad():
        model.gpt_neox.layers[0].mlp.dense_4h_to_h.bias.fill_(value)
    w = Windows(windows.ids[:2], windows.lengths[:2])
    with pytest.raises(FloatingPointError) as err:
        extract(model, w, tmp_path / "n.zarr", 1, {"model": "decoder", "step": "step8"})
    message = str(err.value)
    name = str(dtype).removeprefix("torch.")
    assert message.startswith(
        "layer 1 of checkpoint decoder/step8 has NaN or infinite activations in the batch "
        f"starting at window 0, computed in {name}"
    )
    if dtype == torch.bfloat16:
        assert "load the model in float32 (extraction.dtype: float32)" in message
    else:
        assert "the checkpoint itself produces non-finite values" in message
        assert "float32 (extraction" not in message
    assert list(tmp_path.iterdir()) == []


def test_sentence_means_ignore_padding(tiny_model, windows, tmp_path):
    lengths = np.array([32, 5, 17], dtype=np.int32)
    ids = windows.ids[:3].copy()
    for pad_id in (1, 7):
        for i, n in enumerate(lengths):
            ids[i, n:] = pad_id
        extract(tiny_model, Windows(ids, lengths), tmp_path / f"s{pad_id}.zarr", 3, {})
    a, b = ActivationStore(tmp_path / "s1.zarr"), ActivationStore(tmp_path / "s7.zarr")
    assert a.n_sentences == 3
    for layer in a.layers:
        tokens = a.read(layer)
        direct = np.stack([tokens[a.sequence == s].mean(0) for s in range(3)])
        np.testing.assert_allclose(a.read_sentences(layer), direct, rtol=2e-3, atol=2e-3)
        np.testing.assert_array_equal(a.read_sentences(layer), b.read_sentences(layer))


@pytest.mark.parametrize("ragged", [False, True])
def test_stacked_transfer_stores_what_the_per_layer_path_stores(
    tiny_model, windows, tmp_path, ragged
):
    """The GPU path (every layer of a batch moved to the host at once) run on the CPU: the same
    token rows, bit for bit, and the same sequence means to float32 rounding."""
    lengths = np.array([32, 7, 20, 1, 32, 13]) if ragged else np.full(6, 32)
    w = Windows(windows.ids[:6], lengths)
    for stacked in (False, True):
        extract(tiny_model, w, tmp_path / f"{stacked}.zarr", 3, {}, stacked_transfer=stacked)
    a, b = ActivationStore(tmp_path / "False.zarr"), ActivationStore(tmp_path / "True.zarr")
    for layer in a.layers:
        assert a.dtype(layer) == b.dtype(layer)
        np.testing.assert_array_equal(a.read(layer), b.read(layer))
        np.testing.assert_allclose(
            a.read_sentences(layer), b.read_sentences(layer), rtol=1e-5, atol=1e-6
        )


def test_stacked_transfer_names_a_nonfinite_layer(tokenizer, windows, tmp_path):
    from repgeom.activations.models import build_model
    from tests.conftest import TINY

    model = build_model("gpt_neox", TINY, tokenizer, seed=0).eval()
    with torch.no_grad():
        model.gpt_neox.layers[1].mlp.dense_4h_to_h.bias.fill_(float("inf"))
    w = Windows(windows.ids[:2], windows.lengths[:2])
    with pytest.raises(FloatingPointError, match="^layer 2 of checkpoint m/s has NaN"):
        extract(
            model, w, tmp_path / "n.zarr", 1, {"model": "m", "step": "s"}, stacked_transfer=True
        )
    assert list(tmp_path.iterdir()) == []
