"""The logit lens: each layer decoded by the model's own head, against direct computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from repgeom.activations.extraction import extract
from repgeom.activations.lens import DECODINGS, LogitLens
from repgeom.activations.models import build_model
from repgeom.data.tokens import Windows
from tests.conftest import TINY


@pytest.fixture(scope="module")
def decoder(tokenizer):
    return build_model("gpt_neox", TINY, tokenizer, seed=3).eval()


def ragged(windows: Windows) -> Windows:
    lengths = np.array([32, 9, 20, 2, 32], dtype=np.int32)
    ids = windows.ids[:5].copy()
    for i, n in enumerate(lengths):
        ids[i, n:] = 1
    return Windows(ids, lengths)


def brute_force(model, w: Windows) -> tuple[np.ndarray, np.ndarray]:
    """Loss and agreement per (layer, decoding), one window at a time, all logits at once."""
    norm, head = model.gpt_neox.final_layer_norm, model.get_output_embeddings()
    nll = np.zeros((TINY["num_hidden_layers"] + 1, 2))
    agree = np.zeros_like(nll)
    count = 0
    with torch.no_grad():
        for row, n in zip(w.ids, w.lengths, strict=True):
            ids = torch.from_numpy(row[:n].astype(np.int64))[None]
            out = model(input_ids=ids, output_hidden_states=True)
            final = out.logits[0, :-1].argmax(-1)
            target = ids[0, 1:]
            last = len(out.hidden_states) - 1
            for i, h in enumerate(out.hidden_states):
                for j, use_norm in enumerate((True, False)):
                    z = norm(h[0]) if use_norm and i != last else h[0]
                    logits = head(z)[:-1].double()
                    nll[i, j] += torch.nn.functional.cross_entropy(
                        logits, target, reduction="sum"
                    ).item()
                    agree[i, j] += (logits.argmax(-1) == final).sum().item()
            count += n - 1
    return nll / count, agree / count


def test_lens_equals_direct_decoding_in_small_chunks(decoder, windows):
    w = ragged(windows)
    lens = LogitLens(
        decoder, TINY["num_hidden_layers"] + 1, chunk_elements=decoder.config.vocab_size * 7
    )
    valid_np = np.arange(32)[None, :] < w.lengths[:, None]
    with torch.no_grad():
        ids = torch.from_numpy(w.ids.astype(np.int64))
        valid = torch.from_numpy(valid_np)
        out = decoder.base_model(
            input_ids=ids, attention_mask=valid.long(), output_hidden_states=True
        )
        lens.update(out.hidden_states, ids, valid)
    got = lens.results()
    loss, agreement = brute_force(decoder, w)
    np.testing.assert_allclose(got["loss"], loss, rtol=1e-5)
    np.testing.assert_allclose(got["agreement"], agreement, atol=1e-12)
    assert lens.count == int((w.lengths - 1).sum())
    assert (got["agreement"][-1] == 1).all()  # the last layer is the model's prediction
    assert not np.allclose(got["loss"][1, 0], got["loss"][1, 1])  # the norm matters midway


def test_store_lens_and_eval_loss(decoder, windows, tmp_path):
    w = ragged(windows)
    summary = extract(decoder, w, tmp_path / "s.zarr", 2, {}, eval_loss=True, logit_lens=True)
    ds = xr.open_zarr(tmp_path / "s.zarr")
    assert list(ds.decoding.values) == list(DECODINGS)
    assert ds.logit_lens_loss.dims == ("layer", "decoding")
    last = ds.logit_lens_loss.sel(layer=int(ds.layer[-1]), decoding="final_norm")
    assert float(last) == pytest.approx(summary["eval_loss"], rel=1e-9)
    assert summary["logit_lens_tokens"] == summary["eval_loss_tokens"]


def test_lens_needs_a_causal_head(tokenizer, windows, tmp_path):
    encoder = build_model("bert", TINY, tokenizer, seed=0).eval()
    with pytest.raises(ValueError, match="logit lens needs a causal LM head"):
        extract(encoder, ragged(windows), tmp_path / "x.zarr", 2, {}, logit_lens=True)
