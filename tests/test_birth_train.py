"""Models, freezing schedule and a short training run of the "Birth of a Transformer" study."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from repgeom.birth.config import BirthConfig
from repgeom.birth.data import make_language
from repgeom.birth.models import FreezeSchedule, SimplifiedTransformer, build_model
from repgeom.birth.plan import VARIANT
from repgeom.birth.train import (
    METRICS,
    make_optimizer,
    objective,
    train_on_language,
    train_variant,
)
from repgeom.io import read_dataset, write_dataset
from repgeom.runtime import resolve_device
from repgeom.workflow.config import options
from tests.conftest import stdlib_docstrings

#: A CPU-second configuration: short sequences, small width, a few hundred iterations.
SMALL = {
    "seq_len": 64,
    "d_model": 32,
    "batch_size": 32,
    "n_iterations": 500,
    "eval_every": 10,
    "n_vocab": 40,
    "lr": 0.02,
}

#: Required gap in final in-context accuracy between the 2-layer simplified model and the
#: 1-layer baseline (observed: 0.85 vs 0.53 for seed 0; gaps 0.29-0.32 over seeds 0-2).
MARGIN = 0.2


def variant(name: str = "test", **settings) -> BirthConfig:
    """A variant with these settings, the others the schema's defaults."""
    return dataclasses.replace(options(BirthConfig, VARIANT, settings), name=name)


@pytest.fixture(scope="module")
def lang():
    return make_language(stdlib_docstrings(), 40)


@pytest.fixture(scope="module")
def runs(lang):
    # one thread: these matrices are small, and OpenMP threads spin badly on a busy machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        two = train_on_language(lang, variant(**SMALL, name="two"))
        one = train_on_language(lang, variant(**SMALL, name="one", arch="full", n_layers=1))
    finally:
        torch.set_num_threads(threads)
    return two, one


def test_two_layers_beat_one_layer_in_context(runs):
    (two, _), (one, _) = runs
    acc2 = float(two["acc_incontext"][-1])
    acc1 = float(one["acc_incontext"][-1])
    assert acc2 >= 0.75
    assert acc2 >= acc1 + MARGIN, (acc2, acc1)
    # the induction mechanism is what the 2-layer model uses
    assert float(two["attn_induction"][-1]) > 0.7
    assert float(two["probe_wo2"][-1]) > 0.9
    assert float(two["probe_wk2"][-1]) >= 0.6  # 5 triggers: chance is 0.2


def drop_iteration(ds, var: str, fraction: float = 0.5) -> float:
    """First iteration at which ``var`` has covered ``fraction`` of its drop from start to
    minimum (NaN when it never decreases)."""
    v, its = ds[var].values, ds["iteration"].values
    ok = np.isfinite(v)
    v, its = v[ok], its[ok]
    if not len(v) or not v.min() < v[0]:
        return math.nan
    return float(its[np.nonzero(v <= v[0] - fraction * (v[0] - v.min()))[0][0]])


def test_bigram_loss_falls_before_incontext_loss(runs):
    (two, _), _ = runs
    assert drop_iteration(two, "loss_bigram") < drop_iteration(two, "loss_head")
    assert float(two["loss_bigram"][-1]) < float(two["loss_bigram"][0]) - 1.0


def test_metrics_dataset_layout(runs):
    (two, attn), (one, _) = runs
    assert two["iteration"].values.tolist() == list(range(0, 501, 10))
    assert set(two.data_vars) == set(METRICS)
    for name, var in two.data_vars.items():
        assert var.dims == ("iteration",)
        assert var.attrs["long_name"] and var.attrs["units"]
        assert np.isfinite(var.values).all(), name
    assert two.attrs["variant"] == "two" and '"d_model": 32' in two.attrs["config"]
    # the full-transformer baseline has no layer 2 and no simplified memories
    assert np.isnan(one["probe_wo2"].values).all() and np.isnan(one["attn_induction"]).all()
    assert np.isfinite(one["acc_incontext"].values).all()
    # attention maps of the final model
    assert attn["attention"].dims == ("layer", "query", "key")
    assert attn.sizes == {"layer": 2, "query": 64, "key": 64, "position": 64, "trigger": 5}
    a = attn["attention"].values
    np.testing.assert_allclose(a.sum(axis=2), 1.0, atol=1e-5)
    assert np.abs(np.triu(a, 1)).max() == 0.0
    occ = attn["occurrence"].values
    np.testing.assert_array_equal(attn["is_trigger"].values, occ > 0)
    assert np.isin(attn["token_id"].values[occ > 0], attn["trigger_token"].values).all()


def test_datasets_write_to_netcdf(runs, tmp_path):
    (two, attn), _ = runs
    for i, ds in enumerate((two, attn)):
        write_dataset(ds, tmp_path / f"{i}.nc")
        back = read_dataset(tmp_path / f"{i}.nc")
        for name in ds.data_vars:
            np.testing.assert_array_equal(back[name].values, ds[name].values)


def test_training_is_deterministic(lang):
    cfg = variant(**{**SMALL, "n_iterations": 6, "eval_every": 3, "seq_len": 16, "d_model": 8})
    a, _ = train_on_language(lang, cfg)
    b, _ = train_on_language(lang, cfg)
    np.testing.assert_array_equal(a["loss"].values, b["loss"].values)
    assert a["iteration"].values.tolist() == [0, 3, 6]


def test_train_variant_from_documents():
    docs = ["the cat sat on the mat", "a dog ate the hat"]
    cfg = variant(n_vocab=10, seq_len=16, d_model=8, n_iterations=3, n_triggers=2)
    m, a = train_variant(docs, cfg, device="auto")
    assert m.sizes["iteration"] == 2 and len(m.attrs["documents_sha256"]) == 64
    assert a.attrs["text"] and len(a.attrs["vocabulary"]) == 10


def test_simplified_model_structure_and_frozen_weights(lang):
    cfg = variant(**{**SMALL, "seq_len": 16, "d_model": 8})
    model = build_model(cfg)
    assert isinstance(model, SimplifiedTransformer)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {
        "embed.weight",
        "layers.0.wk.weight",
        "layers.1.wk.weight",
        "layers.1.wo.weight",
        "ffn.weight",
        "unembed.weight",
    }
    frozen_model = build_model(variant(**{**SMALL, "freeze_embeddings": True, "seq_len": 16}))
    assert not frozen_model.embed.weight.requires_grad
    # forward equals the residual sum computed by hand (W_Q = I, causal softmax / √d)
    x = torch.randint(0, 40, (2, 16))
    logits, attn = model(x, need_weights=True)
    with torch.no_grad():
        h = model.embed(x) + model.pos
        for layer in model.layers:
            s = h @ layer.wk.weight.T
            sc = (h @ s.transpose(1, 2)) / np.sqrt(8)
            sc = sc.masked_fill(torch.ones(16, 16, dtype=torch.bool).triu(1), float("-inf"))
            h = h + (sc.softmax(-1) @ (h @ layer.wv.weight.T)) @ layer.wo.weight.T
        h = h + h @ model.ffn.weight.T
        ref = h @ model.unembed.weight.T
    torch.testing.assert_close(logits, ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(model(x)[0], ref, rtol=1e-4, atol=1e-4)
    assert len(attn) == 2 and attn[0].shape == (2, 1, 16, 16)


def test_freeze_schedule_and_frozen_value_matrices(lang):
    from repgeom.birth.train import sample_batch

    cfg = variant(**{**SMALL, "seq_len": 16, "d_model": 8, "lr": 0.05})
    model = build_model(cfg)
    sched = FreezeSchedule(model, {"layers.1.wk.*": 2, "unembed.weight": 0})
    opt = make_optimizer(list(sched.params.values()), cfg)
    wk2 = model.layers[1].wk.weight.detach().clone()
    wv = [layer.wv.weight.detach().clone() for layer in model.layers]
    wo1 = model.layers[0].wo.weight.detach().clone()
    for it in range(4):
        sched.apply(it)
        assert model.layers[1].wk.weight.requires_grad == (it >= 2)
        batch = sample_batch(lang, cfg, 0, it)
        x, y, occ = (torch.from_numpy(a) for a in (batch.inputs, batch.targets, batch.occurrence))
        opt.zero_grad()
        objective(model(x)[0], y, occ, "all").backward()
        opt.step()
        changed = not torch.equal(model.layers[1].wk.weight, wk2)
        assert changed == (it >= 2)
    for layer, w in zip(model.layers, wv, strict=True):
        assert torch.equal(layer.wv.weight, w)
    assert torch.equal(model.layers[0].wo.weight, wo1)
    with pytest.raises(ValueError, match="matches no trainable parameter"):
        FreezeSchedule(model, {"layers.0.wv.weight": 3})


def test_full_transformer_shapes():
    cfg = variant(arch="full", n_layers=2, n_heads=2, d_model=16, seq_len=12)
    model = build_model(cfg)
    logits, attn = model(torch.randint(0, 65, (3, 12)), need_weights=True)
    assert logits.shape == (3, 12, 65)
    assert [a.shape for a in attn] == [(3, 2, 12, 12)] * 2
    assert all(p.requires_grad for p in model.parameters())


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            resolve_device("cuda")
