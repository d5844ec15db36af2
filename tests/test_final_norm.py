"""The final norm's input (metrics.geometry.conventions.final_norm: before): extraction stores
it beside the layers when asked, the store reads it, and final_norm_view puts it in place of
the last layer; a model without a final norm (post-LN encoders) has one state for both."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import xarray as xr

from repgeom.activations.architectures import final_norm
from repgeom.activations.extraction import NormInput, extract
from repgeom.activations.source import ArraySource, BeforeFinalNorm, final_norm_view
from repgeom.activations.store import PRE, PRE_MEANS, PRE_WIDE, ActivationStore
from repgeom.data.tokens import Windows
from tests.conftest import TINY
from tests.test_extraction import direct_states

LENGTHS = np.array([32, 7, 20, 1, 32, 13], dtype=np.int32)  # ragged: padding, buckets sorted
HALF = 2.0**-11  # float16's relative rounding


@pytest.fixture(scope="module")
def gpt2(tokenizer):
    from repgeom.activations.models import build_model

    return build_model("gpt2", TINY, tokenizer, seed=0).eval()


@pytest.fixture(scope="module")
def ragged(windows) -> Windows:
    ids = windows.ids[:6].copy()
    for i, n in enumerate(LENGTHS):
        ids[i, n:] = 1  # padding id
    return Windows(ids, LENGTHS)


def last_block_output(model, w: Windows) -> np.ndarray:
    """The last block's output of every non-padding token, independently of the extraction's
    hook: the hidden states of a copy of the model whose final norm is the identity."""
    bare = copy.deepcopy(model)
    bare.base_model.ln_f = torch.nn.Identity()
    return direct_states(bare, w)[-1]


def through_norm(model, rows: np.ndarray) -> np.ndarray:
    """The model's final norm applied to ``rows`` in float64."""
    norm = copy.deepcopy(final_norm(model)).double()
    with torch.no_grad():
        return norm(torch.from_numpy(rows.astype(np.float64))).numpy()


@pytest.mark.parametrize("stacked", [False, True])
def test_stored_input_of_the_final_norm_maps_to_the_last_layer(gpt2, ragged, tmp_path, stacked):
    out = tmp_path / "pre.zarr"
    summary = extract(gpt2, ragged, out, 4, {}, pre_final_norm=True, stacked_transfer=stacked)
    store = ActivationStore(out)
    assert summary["pre_final_norm"] == store.attrs["pre_final_norm"] == "stored"
    assert store.pre_final_norm == "stored" and store.final_norm_layer == 2
    assert store.layers == [0, 1, 2]  # not a layer: every metric's layers are the same
    assert store.pre_final_norm_dtype() == np.float16
    assert store.attrs["pre_final_norm_dtype"] == "float16"
    pre, last = store.read_pre_final_norm(), store.read(2)
    assert pre.shape == last.shape == (LENGTHS.sum(), 32)
    # the norm in float64 on the stored input is the stored last layer, to float16 storage:
    # half an ulp of the last layer, plus the input's rounding (relative 2^-11) through the
    # norm (gain over scale: a few units here)
    normed = through_norm(gpt2, pre)
    np.testing.assert_allclose(normed, last, rtol=2 * HALF, atol=4 * HALF * np.abs(last).max())
    assert not np.allclose(pre, last, atol=0.1)  # a different state
    # and it is the last block's output computed without the hook, padding left out
    block = last_block_output(gpt2, ragged)
    np.testing.assert_allclose(pre, block, rtol=2 * HALF, atol=2 * HALF * np.abs(block).max())
    # sequence means of the same rows, float32
    means = np.stack([pre[store.sequence == s].mean(0) for s in range(len(LENGTHS))])
    np.testing.assert_allclose(store.read_pre_final_norm_sentences(), means, rtol=2e-3, atol=2e-4)
    rows = np.arange(0, store.n_tokens, 3)
    blocks = list(store.iter_pre_final_norm_blocks(rows, block=7))
    np.testing.assert_array_equal(np.concatenate(blocks), pre[rows])
    np.testing.assert_array_equal(store.read_pre_final_norm_rows(5, 40), pre[5:40])


def test_without_the_flag_nothing_more_is_stored_and_the_layers_are_unchanged(
    gpt2, ragged, tmp_path
):
    extract(gpt2, ragged, tmp_path / "with.zarr", 4, {}, pre_final_norm=True)
    summary = extract(gpt2, ragged, tmp_path / "without.zarr", 4, {})
    with_, without = (
        ActivationStore(tmp_path / "with.zarr"),
        ActivationStore(tmp_path / "without.zarr"),
    )
    assert summary["pre_final_norm"] == without.pre_final_norm == "not_stored"
    for name in (PRE, PRE_WIDE, PRE_MEANS, "final_norm_layer"):
        assert name not in without.root
    assert "pre_final_norm_dtype" not in without.attrs and without.final_norm_layer is None
    ref = direct_states(gpt2, ragged)
    for layer in without.layers:  # the layers, bit for bit, whether the input is stored or not
        np.testing.assert_array_equal(with_.read(layer), without.read(layer))
        np.testing.assert_array_equal(with_.read_sentences(layer), without.read_sentences(layer))
        np.testing.assert_allclose(
            without.read(layer), ref[layer], atol=2e-3 * max(1, np.abs(ref[layer]).max())
        )
    assert with_.attrs["layer_dtypes"] == without.attrs["layer_dtypes"]
    with pytest.raises(ValueError) as err:
        final_norm_view(without, "before")
    message = str(err.value)
    assert str(tmp_path / "without.zarr") in message
    assert "rerun the extraction with metrics.geometry.conventions.final_norm: before" in message
    assert final_norm_view(without, "after") is without


def test_the_view_reads_the_last_layer_before_the_norm(gpt2, ragged, tmp_path):
    extract(gpt2, ragged, tmp_path / "v.zarr", 4, {"model": "m", "step": "s"}, pre_final_norm=True)
    store = ActivationStore(tmp_path / "v.zarr")
    assert final_norm_view(store, "after") is store
    view = final_norm_view(store, "before")
    assert isinstance(view, BeforeFinalNorm) and view.final_norm == "before"
    assert view.layers == store.layers and view.n_tokens == store.n_tokens
    np.testing.assert_array_equal(view.token_id, store.token_id)
    pre = store.read_pre_final_norm()
    rows = np.arange(1, store.n_tokens, 2)
    np.testing.assert_array_equal(view.read(2), pre)
    np.testing.assert_array_equal(view.read(2, rows), pre[rows])
    np.testing.assert_array_equal(np.concatenate(list(view.iter_blocks(2, block=9))), pre)
    np.testing.assert_array_equal(view.read_rows(2, 3, 11), pre[3:11])
    np.testing.assert_array_equal(view.read_sentences(2), store.read_pre_final_norm_sentences())
    assert view.dtype(2) == np.float16
    for layer in (0, 1):  # the other layers are the store's
        np.testing.assert_array_equal(view.read(layer), store.read(layer))
        np.testing.assert_array_equal(next(view.iter_blocks(layer)), store.read(layer))
    assert view.provenance() == store.provenance() and view.path == store.path
    with pytest.raises(ValueError, match="before or after|one of"):
        final_norm_view(store, "pre")


def test_post_ln_encoder_stores_nothing_more_and_before_is_after(tokenizer, windows, tmp_path):
    from repgeom.activations.models import build_model

    bert = build_model("bert", TINY, tokenizer, seed=0).eval()
    assert final_norm(bert) is None
    w = Windows(windows.ids[:4], windows.lengths[:4])
    summary = extract(bert, w, tmp_path / "b.zarr", 2, {}, pre_final_norm=True)
    store = ActivationStore(tmp_path / "b.zarr")
    assert summary["pre_final_norm"] == store.pre_final_norm == "none"
    assert PRE not in store.root and summary["final_norm_index"] == -1
    assert final_norm_view(store, "before") is store
    ref = direct_states(bert, w)
    np.testing.assert_allclose(store.read(2), ref[2], atol=2e-3 * max(1, np.abs(ref[2]).max()))


def test_an_input_beyond_float16_is_stored_in_float32(gpt2, ragged, tmp_path):
    """A planted offset of 1e5 in one dimension of the last block's output: the norm's input
    moves to its own float32 array; the layers (after the norm) stay float16."""
    model = copy.deepcopy(gpt2)
    with torch.no_grad():
        model.transformer.h[-1].mlp.c_proj.bias[3] += 1e5
    extract(model, ragged, tmp_path / "w.zarr", 4, {}, pre_final_norm=True)
    store = ActivationStore(tmp_path / "w.zarr")
    assert store.pre_final_norm_dtype() == np.float32
    assert store.attrs["pre_final_norm_dtype"] == "float32"
    assert (
        store.attrs["layer_dtypes"] == ["float16"] * 3 and "hidden_state_float32" not in store.root
    )
    pre, last = store.read_pre_final_norm(), store.read(2)
    assert np.abs(pre[:, 3]).min() > 9e4
    np.testing.assert_allclose(pre, last_block_output(model, ragged), rtol=1e-5, atol=1e-3)
    # the input is exact: what is left is the last layer's float16 rounding
    normed = through_norm(model, pre)
    np.testing.assert_allclose(normed, last, rtol=HALF, atol=1e-4)
    # the float16 array holds no chunk: reads as NaN in plain xarray, like a promoted layer
    ds = xr.open_zarr(tmp_path / "w.zarr")
    assert np.isnan(ds[PRE].values).all()
    np.testing.assert_array_equal(ds[PRE_WIDE].sel(final_norm_layer=2).values, pre)


def test_the_store_opens_with_xarray(gpt2, ragged, tmp_path):
    extract(gpt2, ragged, tmp_path / "x.zarr", 4, {}, pre_final_norm=True)
    ds = xr.open_zarr(tmp_path / "x.zarr")
    assert ds[PRE].dims == ("final_norm_layer", "token", "hidden")
    assert ds["final_norm_layer"].values.tolist() == [2]
    assert ds["hidden_state"].sizes["layer"] == 3
    assert set(ds[PRE].coords) >= {"token_id", "position", "token_sequence"}
    assert ds[PRE_MEANS].dims == ("final_norm_layer", "sequence", "hidden")
    store = ActivationStore(tmp_path / "x.zarr")
    np.testing.assert_array_equal(ds[PRE].values[0].astype(np.float32), store.read_pre_final_norm())


def test_norm_input_refuses_an_input_the_norm_does_not_map_to_the_last_state():
    norm = torch.nn.LayerNorm(8)
    capture = NormInput(norm, "m/s")
    x = torch.randn(2, 3, 8)
    valid = torch.ones(2, 3, dtype=torch.bool)
    capture.arm()
    last = norm(x)
    norm(x + 1)  # a later call (the logit lens) is not recorded
    torch.testing.assert_close(capture.take(last, valid), x)
    capture.checked = False
    capture.arm()
    norm(x)
    with pytest.raises(RuntimeError, match="final_norm: after"):
        capture.take(last + 1, valid)
    capture.arm()
    with pytest.raises(RuntimeError, match="was not called"):
        capture.take(last, valid)
    capture.remove()
    assert not norm._forward_pre_hooks


def test_array_source_carries_the_input_of_the_final_norm():
    rng = np.random.default_rng(0)
    hidden = rng.normal(size=(3, 10, 4)).astype(np.float32)
    pre = rng.normal(size=(10, 4)).astype(np.float32)
    source = ArraySource(hidden, pre_final_norm=pre)
    assert source.pre_final_norm == "stored" and source.final_norm_layer == 2
    view = final_norm_view(source, "before")
    np.testing.assert_array_equal(view.read(2), pre)
    np.testing.assert_array_equal(np.concatenate(list(view.iter_blocks(2, block=3))), pre)
    np.testing.assert_array_equal(view.read(2, np.array([1, 4])), pre[[1, 4]])
    np.testing.assert_array_equal(view.read(1), hidden[1])
    assert final_norm_view(source, "after") is source
    plain = ArraySource(hidden)  # no final norm: before = after
    assert plain.pre_final_norm == "none" and final_norm_view(plain, "before") is plain
    lacking = ArraySource(hidden, has_final_norm=True)
    with pytest.raises(ValueError, match="final_norm: before"):
        final_norm_view(lacking, "before")
    with pytest.raises(ValueError, match="token, hidden"):
        ArraySource(hidden, pre_final_norm=pre[:5])


def test_the_plan_asks_for_it_where_the_convention_is_before(tmp_path, tokenizer, docs):
    from repgeom.workflow.run import plan_run
    from tests.test_studies_named import one_model_config

    cfg = one_model_config(tmp_path, tokenizer, docs)
    assert plan_run(cfg).pre_final_norm is False  # the default: after
    cfg["metrics"] = {"geometry": {"conventions": {"final_norm": "before"}}}
    assert plan_run(cfg).pre_final_norm is True


@pytest.mark.parametrize("architecture", ["gpt_neox", "llama"])
def test_other_pre_ln_families_store_the_input_of_their_final_norm(
    architecture, tokenizer, ragged, tmp_path
):
    """GPT-NeoX's final_layer_norm and Llama's RMSNorm norm: the hook finds and checks them."""
    from repgeom.activations.models import build_model

    model = build_model(architecture, TINY, tokenizer, seed=0).eval()
    extract(model, ragged, tmp_path / "f.zarr", 4, {}, pre_final_norm=True)
    store = ActivationStore(tmp_path / "f.zarr")
    assert store.pre_final_norm == "stored" and store.final_norm_layer == store.layers[-1]
    last = store.read(store.layers[-1])
    normed = through_norm(model, store.read_pre_final_norm())
    np.testing.assert_allclose(normed, last, rtol=2 * HALF, atol=4 * HALF * np.abs(last).max())
