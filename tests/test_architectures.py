"""Every model family the paper configs use loads as what its checkpoint is (causal LM, masked LM
or bare model), extraction equals a direct forward pass, and the eval loss equals the model's
own; a checkpoint whose weights do not match its declared head is refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import transformers

from repgeom.activations.architectures import ARCHITECTURES, head_objective
from repgeom.activations.checkpoint import declared_objective
from repgeom.activations.extraction import extract
from repgeom.activations.models import (
    Checkpoint,
    CheckpointError,
    build_model,
    check_dtype,
    objective,
)
from repgeom.activations.store import ActivationStore
from repgeom.data.tokens import Windows
from tests.conftest import TINY
from tests.test_extraction import direct_states

# family -> extra config (Phi-3, Llama, Qwen2 stand for the paper's decoders; multilingual BERT
# is BERT; RoBERTa positions start after the padding index)
FAMILIES = {
    "gpt_neox": {},
    "gpt2": {},
    "llama": {},
    "phi3": {},
    "qwen2": {"num_key_value_heads": 2},
    "bert": {},
    "roberta": {"max_position_embeddings": 80},
}


def ragged(windows: Windows) -> Windows:
    """Six windows of different lengths, padded with id 1."""
    lengths = np.array([32, 7, 20, 3, 32, 13], dtype=np.int32)
    ids = windows.ids[:6].copy()
    for i, n in enumerate(lengths):
        ids[i, n:] = 1
    return Windows(ids, lengths)


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def saved(request, tmp_path_factory, tokenizer):
    """(family, checkpoint directory) of a tiny random model saved with save_pretrained."""
    family = request.param
    model = build_model(family, {**TINY, **FAMILIES[family]}, tokenizer, seed=0)
    path = tmp_path_factory.mktemp(family)
    model.save_pretrained(path)
    return family, path


def test_schema_lists_the_trainable_architectures():
    import yaml

    from tests.workflow import ROOT

    schema = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())
    listed = schema["$defs"]["model"]["properties"]["architecture"]["enum"]
    assert sorted(listed) == sorted(ARCHITECTURES)


def test_head_objective_from_class_names():
    assert head_objective("GPTNeoXForCausalLM") == "causal"
    assert head_objective("GPT2LMHeadModel") == "causal"
    assert head_objective("Phi3ForCausalLM") == "causal"
    assert head_objective("XLMRobertaForMaskedLM") == "masked"
    assert head_objective("BertModel") == head_objective("GPTNeoXModel") == "none"
    assert declared_objective(None) == declared_objective([]) == "none"
    with pytest.raises(ValueError, match="objective: none"):
        head_objective("BertForSequenceClassification")


def test_family_loads_as_declared_and_extracts_like_a_direct_forward(saved, windows, tmp_path):
    family, path = saved
    expected = ARCHITECTURES[family][2]
    model = Checkpoint(str(path)).load()
    assert objective(model) == expected
    assert json.loads((path / "config.json").read_text())["architectures"] == [
        ARCHITECTURES[family][1]
    ]
    w = ragged(windows)
    summary = extract(model, w, tmp_path / "s.zarr", 4, {}, eval_loss=expected == "causal")
    store = ActivationStore(tmp_path / "s.zarr")
    assert store.attrs["objective"] == expected and store.n_tokens == w.n_tokens
    bare = transformers.AutoModel.from_pretrained(path).eval()  # an independent load
    ref = direct_states(bare, w)
    assert len(store.layers) == len(ref) == TINY["num_hidden_layers"] + 1
    for layer in store.layers:
        scale = np.abs(ref[layer]).max()
        np.testing.assert_allclose(store.read(layer), ref[layer], rtol=2**-10, atol=2**-9 * scale)
    # six windows in buckets of four, longest first: 32 32 20 13 | 7 3 → 4·32 + 2·7 computed
    assert summary["padding_fraction"] == pytest.approx(1 - w.n_tokens / (4 * 32 + 2 * 7))
    if expected != "causal":
        assert "eval_loss" not in summary
        return
    nll, count = 0.0, 0
    with torch.no_grad():
        for row, n in zip(w.ids, w.lengths, strict=True):
            ids = torch.from_numpy(row[:n].astype(np.int64))[None]
            nll += model(input_ids=ids, labels=ids).loss.item() * (n - 1)
            count += n - 1
    assert summary["eval_loss_tokens"] == count
    assert summary["eval_loss"] == pytest.approx(nll / count, rel=1e-5)


def test_eval_loss_refused_without_a_causal_head(tokenizer, windows, tmp_path):
    model = build_model("bert", TINY, tokenizer, seed=0).eval()
    with pytest.raises(ValueError, match="needs a causal LM head"):
        extract(model, ragged(windows), tmp_path / "x.zarr", 4, {}, eval_loss=True)
    assert not (tmp_path / "x.zarr").exists()


def test_bare_models_load_bare(tokenizer, tmp_path):
    from transformers import BertConfig, BertModel

    bare = BertModel(BertConfig(vocab_size=len(tokenizer), **TINY))
    bare.save_pretrained(tmp_path / "bare")
    loaded = Checkpoint(str(tmp_path / "bare")).load()
    assert type(loaded).__name__ == "BertModel" and objective(loaded) == "none"
    causal = build_model("gpt_neox", TINY, tokenizer, seed=0)
    causal.save_pretrained(tmp_path / "neox")
    as_bare = Checkpoint(str(tmp_path / "neox"), as_objective="none").load()
    assert type(as_bare).__name__ == "GPTNeoXModel"
    torch.testing.assert_close(
        as_bare.embed_in.weight, causal.gpt_neox.embed_in.weight, rtol=0, atol=0
    )


def test_head_missing_from_the_weights_is_refused(tokenizer, tmp_path):
    """A decoder saved without its head but declaring one: never a random head."""
    model = build_model("gpt_neox", TINY, tokenizer, seed=0)
    model.gpt_neox.save_pretrained(tmp_path / "headless")
    cfg_path = tmp_path / "headless" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["architectures"] = ["GPTNeoXForCausalLM"]
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError) as err:
        Checkpoint(str(tmp_path / "headless")).load()
    msg = str(err.value)
    assert "GPTNeoXForCausalLM" in msg and "lm_head.weight" in msg and "objective: none" in msg
    bare = Checkpoint(str(tmp_path / "headless"), as_objective="none").load()
    assert objective(bare) == "none"


def test_sentence_transformers_layout(tokenizer, tmp_path):
    """modules.json names the folder of the transformer; it loads as a bare model."""
    from transformers import BertConfig, BertModel

    BertModel(BertConfig(vocab_size=len(tokenizer), **TINY)).save_pretrained(
        tmp_path / "st" / "0_Transformer"
    )
    (tmp_path / "st" / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "0_Transformer", "type": "x.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "x.models.Pooling"},
            ]
        )
    )
    assert Checkpoint(str(tmp_path / "st")).subfolder() == "0_Transformer"
    assert objective(Checkpoint(str(tmp_path / "st")).load()) == "none"


def test_float16_needs_cuda():
    with pytest.raises(ValueError, match="extraction.dtype"):
        check_dtype("float16", "cpu")
    check_dtype("bfloat16", "cpu")


@pytest.mark.parametrize("family", ["gpt_neox", "bert"])
def test_bfloat16_extraction_is_close_to_float32(family, tokenizer, windows, tmp_path):
    build_model(family, TINY, tokenizer, seed=0).save_pretrained(tmp_path / "m")
    w = ragged(windows)
    stores = {}
    for dtype in ("float32", "bfloat16"):
        model = Checkpoint(str(tmp_path / "m")).load(dtype)
        extract(model, w, tmp_path / f"{dtype}.zarr", 4, {}, eval_loss=family == "gpt_neox")
        stores[dtype] = ActivationStore(tmp_path / f"{dtype}.zarr")
    for layer in stores["float32"].layers:
        a, b = stores["float32"].read(layer), stores["bfloat16"].read(layer)
        assert b.dtype == np.float32  # metrics read float32 whatever the model ran in
        rel = np.linalg.norm(a - b) / np.linalg.norm(a)
        assert 0 < rel < 0.05, (layer, rel)
    if family == "gpt_neox":
        loss = [stores[d].attrs["eval_loss"] for d in ("float32", "bfloat16")]
        assert loss[1] == pytest.approx(loss[0], rel=0.02)
