"""The logit lens: each layer decoded by the model's own head, against direct computations."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import xarray as xr

from repgeom.activations.extraction import extract
from repgeom.activations.lens import DECODINGS, LensSample, LogitLens
from repgeom.activations.models import build_model
from repgeom.data.tokens import Windows
from repgeom.sampling import seeded_subsample
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


def predicting(w: Windows) -> np.ndarray:
    """(rows, width − 1) mask of the positions that predict a real next token."""
    return np.arange(w.ids.shape[1] - 1)[None, :] < (w.lengths[:, None] - 1)


def reference(model, w: Windows, selected: np.ndarray) -> dict[str, np.ndarray]:
    """Per-token loss and agreement of every layer and decoding at the ``selected`` positions,
    in float64 (a float64 copy of the model, one window at a time, all logits at once)."""
    m = copy.deepcopy(model).double()
    norm, head = m.gpt_neox.final_layer_norm, m.get_output_embeddings()
    n_states = TINY["num_hidden_layers"] + 1
    loss = [[[], []] for _ in range(n_states)]
    hit = [[[], []] for _ in range(n_states)]
    with torch.no_grad():
        for row, n, sel in zip(w.ids, w.lengths, selected, strict=True):
            ids = torch.from_numpy(row[:n].astype(np.int64))[None]
            out = m(input_ids=ids, output_hidden_states=True)
            at = torch.from_numpy(np.flatnonzero(sel[: n - 1]))
            final = out.logits[0, at].argmax(-1)
            target = ids[0, at + 1]
            last = len(out.hidden_states) - 1
            for i, h in enumerate(out.hidden_states):
                for j, use_norm in enumerate((True, False)):
                    z = norm(h[0, at]) if use_norm and i != last else h[0, at]
                    logits = head(z)
                    nll = torch.nn.functional.cross_entropy(logits, target, reduction="none")
                    loss[i][j].append(nll.numpy())
                    hit[i][j].append((logits.argmax(-1) == final).numpy().astype(np.float64))
    out = {}
    for key, values in (("loss", loss), ("agreement", hit)):
        per = [[np.concatenate(v) for v in layer] for layer in values]
        out[key] = np.array([[v.mean() for v in layer] for layer in per])
        out[f"{key}_se"] = np.array(
            [[v.std(ddof=1) / np.sqrt(len(v)) for v in layer] for layer in per]
        )
    out["count"] = int(selected.sum())
    return out


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
        lens.update(out.hidden_states, ids, valid[:, :-1] & valid[:, 1:])
    got = lens.results()
    ref = reference(decoder, w, predicting(w))
    for key in ("loss", "loss_se", "agreement_se"):  # SE: float32 losses, ~1e-6 nat each
        np.testing.assert_allclose(got[key], ref[key], rtol=1e-5, atol=1e-7, err_msg=key)
    np.testing.assert_allclose(got["agreement"], ref["agreement"], atol=1e-12)
    assert lens.count == ref["count"] == int((w.lengths - 1).sum())
    assert (got["agreement"][-1] == 1).all()  # the last layer is the model's prediction
    assert not np.allclose(got["loss"][1, 0], got["loss"][1, 1])  # the norm matters midway


@pytest.mark.parametrize("eval_loss", [False, True])
def test_budgeted_lens_equals_a_float64_lens_of_the_same_sample(
    decoder, windows, tmp_path, eval_loss
):
    """The lens on its seeded sample (chosen from the lengths with the one seeded-subsample
    rule) equals a float64 lens of those positions; its SE is std/√n of the per-token values."""
    w = ragged(windows)
    sample = LensSample(tokens=40, seed=3)
    summary = extract(
        decoder, w, tmp_path / "s.zarr", 2, {}, eval_loss=eval_loss, logit_lens=sample
    )
    pool = np.flatnonzero(predicting(w))
    selected = np.zeros(predicting(w).shape, dtype=bool)
    selected.flat[pool[seeded_subsample(len(pool), 40, 3)]] = True
    ref = reference(decoder, w, selected)
    ds = xr.open_zarr(tmp_path / "s.zarr")
    assert summary["logit_lens_tokens"] == ref["count"] == 40 < len(pool)
    for key in ("loss", "loss_se", "agreement_se"):
        var = ds[f"logit_lens_{key}"]
        assert var.dims == ("layer", "decoding") and var.attrs["long_name"], key
        np.testing.assert_allclose(var.values, ref[key], rtol=1e-5, atol=1e-7, err_msg=key)
    np.testing.assert_allclose(ds.logit_lens_agreement.values, ref["agreement"], atol=1e-12)
    assert ds.logit_lens_loss_se.attrs["units"] == "nat/token"
    if eval_loss:  # over every position, not the sample
        assert summary["eval_loss_tokens"] == len(pool)


def test_lens_tokens_are_bounded_by_the_budget_not_the_store(decoder, windows, tmp_path):
    for n_windows, budget in ((4, 1000), (12, 50), (24, 50)):
        w = Windows(windows.ids[:n_windows], windows.lengths[:n_windows])
        summary = extract(
            decoder, w, tmp_path / f"{n_windows}.zarr", 4, {}, logit_lens=LensSample(budget, 0)
        )
        assert summary["logit_lens_tokens"] == min(budget, n_windows * 31)


def test_store_lens_and_eval_loss(decoder, windows, tmp_path):
    w = ragged(windows)
    summary = extract(
        decoder, w, tmp_path / "s.zarr", 2, {}, eval_loss=True, logit_lens=LensSample(10**6, 0)
    )
    ds = xr.open_zarr(tmp_path / "s.zarr")
    assert list(ds.decoding.values) == list(DECODINGS)
    assert ds.logit_lens_loss.dims == ("layer", "decoding")
    last = ds.logit_lens_loss.sel(layer=int(ds.layer[-1]), decoding="final_norm")
    assert float(last) == pytest.approx(summary["eval_loss"], rel=1e-9)
    assert summary["logit_lens_tokens"] == summary["eval_loss_tokens"]


def test_unasked_passes_are_not_run(decoder, windows, tmp_path, monkeypatch):
    """A store asked for neither the eval loss nor the lens never reaches the head."""
    import repgeom.activations.extraction as extraction

    def refuse(*args, **kwargs):
        raise AssertionError("an unasked pass ran")

    for name in ("predicting_nll", "LogitLens", "causal_logits", "check_head", "lens_positions"):
        monkeypatch.setattr(extraction, name, refuse)
    summary = extract(decoder, ragged(windows), tmp_path / "n.zarr", 2, {})
    ds = xr.open_zarr(tmp_path / "n.zarr")
    assert not [v for v in ds.variables if str(v).startswith("logit_lens")]
    assert "decoding" not in ds.dims
    assert not {"eval_loss", "eval_loss_tokens", "logit_lens_tokens"} & set(ds.attrs)
    assert "eval_loss" not in summary


def test_lens_needs_a_causal_head(tokenizer, windows, tmp_path):
    encoder = build_model("bert", TINY, tokenizer, seed=0).eval()
    with pytest.raises(ValueError, match="logit lens needs a causal LM head"):
        extract(encoder, ragged(windows), tmp_path / "x.zarr", 2, {}, logit_lens=LensSample(8, 0))
