"""Checkpoint integrity: fingerprints independent of sharding and format, duplicates, partial
duplicates, float64 distances against numpy, discontinuities, the gate message, the figure."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file as load_numpy
from safetensors.torch import load_file, save_file

from repgeom.activations import weights as W
from repgeom.activations.weights import (
    GROUPS,
    CheckpointWeights,
    StoredWeights,
    compare,
    discontinuities,
    duplicates_message,
    find_duplicates,
    fingerprint_checkpoint,
    stored_weight_files,
    tensor_group,
    weights_dataset,
)
from tests.conftest import TINY

VOCAB = 96
LABELS = ["step0", "step1", "step2", "step4", "step8", "step16"]
EMBED = "gpt_neox.embed_in.weight"
FROZEN = "gpt_neox.final_layer_norm.weight"  # the same in every checkpoint: never a partial


def tiny_neox(seed: int = 0, vocab: int = VOCAB):
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    torch.manual_seed(seed)
    return GPTNeoXForCausalLM(GPTNeoXConfig(**TINY, vocab_size=vocab)).eval()


def write_checkpoint(directory: Path, tensors: dict[str, torch.Tensor], config: Path) -> Path:
    """A checkpoint directory: config.json and one model.safetensors."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(config, directory / "config.json")
    save_file({k: v.contiguous() for k, v in tensors.items()}, directory / "model.safetensors")
    return directory


def perturbed(tensors: dict[str, torch.Tensor], seed: int, scale: float) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        k: v if k == FROZEN else v + scale * torch.randn(v.shape, generator=g)
        for k, v in tensors.items()
    }


def build_run(root: Path, vocab: int = VOCAB) -> Path:
    """A local run: step1 a byte copy of step0, step2 step0 resharded, step4/step16 close to
    each other, step8 far from both (a planted jump) holding step16's embedding."""
    model = tiny_neox(vocab=vocab)
    model.save_pretrained(root / "step0")
    shutil.copytree(root / "step0", root / "step1")
    model.save_pretrained(root / "step2", max_shard_size="8KB")
    assert len(list((root / "step2").glob("*.safetensors"))) > 2
    config = root / "step0" / "config.json"
    base = load_file(root / "step0" / "model.safetensors")
    step4 = perturbed(base, 1, 0.01)
    step16 = perturbed(step4, 2, 0.01)
    step8 = perturbed(base, 3, 1.0)
    step8[EMBED] = step16[EMBED].clone()
    for label, tensors in (("step4", step4), ("step8", step8), ("step16", step16)):
        write_checkpoint(root / label, tensors, config)
    return root


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return build_run(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def ds(run):
    return weights_dataset([(x, run / x) for x in LABELS], model="tiny")


def numpy_weights(directory: Path) -> dict[str, np.ndarray]:
    """Every floating-point tensor of a safetensors checkpoint as float64, read with the
    safetensors library."""
    out = {}
    for f in sorted(directory.glob("*.safetensors")):
        out.update({k: v.astype(np.float64) for k, v in load_numpy(f).items()})
    return out


def reference(a: dict, b: dict, names) -> tuple[float, float]:
    """(relative L2 ‖a − b‖/‖b‖, cosine) over ``names``, straightforward float64 numpy."""
    names = list(names)
    if not names:
        return math.nan, math.nan
    diff = sum(float(((a[k] - b[k]) ** 2).sum()) for k in names)
    na = sum(float((a[k] ** 2).sum()) for k in names)
    nb = sum(float((b[k] ** 2).sum()) for k in names)
    dot = sum(float((a[k] * b[k]).sum()) for k in names)
    return math.sqrt(diff) / math.sqrt(nb), dot / math.sqrt(na * nb)


def test_duplicates_of_step0_are_step1_and_step2_only(ds):
    dup = dict(zip(LABELS, ds["duplicate_of"].values, strict=True))
    assert dup == {
        "step0": "",
        "step1": "step0",
        "step2": "step0",
        "step4": "",
        "step8": "",
        "step16": "",
    }
    assert list(ds["step_number"].values) == [0, 1, 2, 4, 8, 16]


def test_partial_duplicate_is_step8_of_step16_naming_the_embedding(ds):
    partial = dict(zip(LABELS, ds["partial_duplicate_of"].values, strict=True))
    assert partial == {x: ("step16" if x == "step8" else "") for x in LABELS}
    assert ds["partial_duplicate_tensors"].sel(step="step8").item() == EMBED
    assert all(
        ds["partial_duplicate_tensors"].sel(step=x).item() == "" for x in LABELS if x != "step8"
    )


def test_fingerprints_do_not_depend_on_sharding(run, ds):
    fps = ds["fingerprint"].values
    assert fps[0] == fps[1] == fps[2]
    assert len(set(fps[2:])) == 4 and len(fps[0]) == 64
    single, sharded = fingerprint_checkpoint(run / "step0"), fingerprint_checkpoint(run / "step2")
    assert len(stored_weight_files(run / "step2")) > 2
    assert single.tensors == sharded.tensors
    # the name is not part of a tensor's fingerprint: step8's embedding hashes as step16's
    step8, step16 = fingerprint_checkpoint(run / "step8"), fingerprint_checkpoint(run / "step16")
    assert step8.tensors[EMBED] == step16.tensors[EMBED]
    assert ds["n_tensors"].values.tolist() == [len(single.tensors)] * len(LABELS)


def test_distances_equal_a_float64_numpy_computation(run, ds):
    arrays = {x: numpy_weights(run / x) for x in LABELS}
    names = list(arrays["step0"])
    groups = {g: [k for k in names if tensor_group(k) == g] for g in GROUPS}
    assert not groups["other"] and groups["head"] and groups["embeddings"]
    n = len(LABELS)
    for t, x in enumerate(LABELS):
        for var, r in (("first", 0), ("previous", t - 1), ("last", n - 1)):
            got = ds[f"distance_to_{var}"].sel(step=x).item()
            by_group = ds[f"distance_to_{var}_by_group"].sel(step=x)
            if r < 0:
                assert math.isnan(got) and np.isnan(by_group.values).all()
                continue
            want = reference(arrays[x], arrays[LABELS[r]], names)[0]
            assert got == pytest.approx(want, rel=1e-12, abs=1e-15), (x, var)
            for g in GROUPS:
                want_g = reference(arrays[x], arrays[LABELS[r]], groups[g])[0]
                got_g = by_group.sel(group=g).item()
                if math.isnan(want_g):
                    assert math.isnan(got_g)
                else:
                    assert got_g == pytest.approx(want_g, rel=1e-12, abs=1e-15), (x, var, g)
        want_cos = reference(arrays[x], arrays["step0"], names)[1]
        assert ds["cosine_to_first"].sel(step=x).item() == pytest.approx(want_cos, rel=1e-12)
        for g in GROUPS:
            want_g = reference(arrays[x], arrays["step0"], groups[g])[1]
            got_g = ds["cosine_to_first_by_group"].sel(step=x, group=g).item()
            assert (math.isnan(want_g) and math.isnan(got_g)) or got_g == pytest.approx(
                want_g, rel=1e-12
            )
        if 0 < t < n - 1:
            want_nb = reference(arrays[LABELS[t + 1]], arrays[LABELS[t - 1]], names)[0]
            got_nb = ds["distance_between_neighbours"].sel(step=x).item()
            assert got_nb == pytest.approx(want_nb, rel=1e-12, abs=1e-15)
    assert ds["distance_to_previous"].sel(step="step1").item() == 0.0


def test_discontinuity_at_the_planted_jump_only(ds):
    assert ds["discontinuity"].values.tolist() == [x == "step8" for x in LABELS]
    assert ds.attrs["discontinuity_factor"] == 2.0


def test_discontinuity_rule():
    # far from both close neighbours; identical neighbours; a normal path; the ends (NaN)
    got = discontinuities(
        [np.nan, 5.0, 1e-9, 1.0, 0.0], [5.0, 5.0, 1e-9, 1.0, np.nan], [np.nan, 1.0, 0.0, 1.5, 1.0]
    )
    assert got.tolist() == [False, True, True, False, False]
    assert discontinuities([5.0], [5.0], [2.0], factor=3.0).tolist() == [False]


def test_every_variable_has_long_name_and_units_and_saves(ds, tmp_path):
    from repgeom.io import read_dataset, write_dataset

    for name in [*ds.data_vars, *ds.coords]:
        if name in ("step", "group"):
            continue
        assert {"long_name", "units"} <= set(ds[name].attrs), name
    assert ds["distance_to_first_by_group"].dims == ("step", "group")
    write_dataset(ds, tmp_path / "weights.nc")
    back = read_dataset(tmp_path / "weights.nc")
    assert list(back["duplicate_of"].values) == list(ds["duplicate_of"].values)
    assert list(back["fingerprint"].values) == list(ds["fingerprint"].values)


def test_bin_checkpoints_hash_as_their_safetensors_twin(run, tmp_path):
    tensors = load_file(run / "step4" / "model.safetensors")
    single = tmp_path / "bin"
    single.mkdir()
    torch.save(dict(tensors), single / "pytorch_model.bin")
    sharded = tmp_path / "bin_sharded"
    sharded.mkdir()
    names = sorted(tensors)
    weight_map = {}
    for i, part in enumerate((names[::2], names[1::2])):
        shard = f"pytorch_model-0000{i + 1}-of-00002.bin"
        torch.save({k: tensors[k] for k in part}, sharded / shard)
        weight_map.update(dict.fromkeys(part, shard))
    (sharded / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": weight_map}))
    want = fingerprint_checkpoint(run / "step4")
    for d in (single, sharded):
        got = fingerprint_checkpoint(d)
        assert got.tensors == want.tensors and got.fingerprint == want.fingerprint
    s = compare(single, [run / "step4", sharded])
    assert s[0].distance() == 0.0 and s[1].distance() == 0.0


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_checkpoints_hash_and_measure(run, tmp_path, dtype):
    config = run / "step0" / "config.json"
    a = {k: v.to(dtype) for k, v in load_file(run / "step4" / "model.safetensors").items()}
    b = {k: v.to(dtype) for k, v in load_file(run / "step8" / "model.safetensors").items()}
    da = write_checkpoint(tmp_path / "a", a, config)
    db = write_checkpoint(tmp_path / "b", b, config)
    fa, fb = fingerprint_checkpoint(da), fingerprint_checkpoint(db)
    f32 = fingerprint_checkpoint(run / "step4")
    assert fa.fingerprint != fb.fingerprint and fa.fingerprint != f32.fingerprint
    assert fa.tensors[EMBED] != f32.tensors[EMBED]  # the dtype is part of a fingerprint
    names = list(a)
    x = {k: a[k].double().numpy() for k in names}
    y = {k: b[k].double().numpy() for k in names}
    want, want_cos = reference(x, y, names)
    (s,) = compare(da, [db])
    assert s.distance() == pytest.approx(want, rel=1e-12)
    assert s.cosine() == pytest.approx(want_cos, rel=1e-12)
    ds = weights_dataset([("step4", da), ("step8", db)])
    want_ds = reference(y, x, names)[0]  # step8 against the first, step4
    assert ds["distance_to_first"].sel(step="step8").item() == pytest.approx(want_ds, rel=1e-12)


def test_tied_embeddings_are_counted_once(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(
        n_embd=32, n_layer=2, n_head=2, n_positions=64, vocab_size=VOCAB, tie_word_embeddings=True
    )
    model = GPT2LMHeadModel(cfg).eval()
    model.save_pretrained(tmp_path / "st")
    state = model.state_dict()
    assert "lm_head.weight" in state  # the same storage under two names
    (tmp_path / "bin").mkdir()
    torch.save(state, tmp_path / "bin" / "pytorch_model.bin")
    st, binary = fingerprint_checkpoint(tmp_path / "st"), fingerprint_checkpoint(tmp_path / "bin")
    assert "lm_head.weight" not in st.tensors and "transformer.wte.weight" in st.tensors
    assert binary.tensors == st.tensors
    assert len(st.tensors) == len(state) - 1
    n_params = sum(p.numel() for p in model.parameters())  # parameters() counts a tied one once
    assert sum(t.size for t in StoredWeights(tmp_path / "bin") if t.measured) == n_params


def test_groups_across_architectures():
    import transformers

    small = dict(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        vocab_size=VOCAB,
        pad_token_id=0,
        bos_token_id=0,
        eos_token_id=0,
    )
    for config_cls, model_cls in (
        ("GPTNeoXConfig", "GPTNeoXForCausalLM"),
        ("LlamaConfig", "LlamaForCausalLM"),
        ("Qwen2Config", "Qwen2ForCausalLM"),
        ("Phi3Config", "Phi3ForCausalLM"),
        ("BertConfig", "BertForMaskedLM"),
        ("RobertaConfig", "RobertaForMaskedLM"),
        ("BertConfig", "BertModel"),
    ):
        cfg = getattr(transformers, config_cls)(**small)
        names = getattr(transformers, model_cls)(cfg).state_dict()
        found = {n: tensor_group(n) for n in names}
        assert "other" not in found.values(), (
            model_cls,
            [n for n, g in found.items() if g == "other"],
        )
    expected = {
        "gpt_neox.embed_in.weight": "embeddings",
        "embed_out.weight": "head",
        "gpt_neox.layers.3.attention.query_key_value.weight": "attention",
        "gpt_neox.layers.3.mlp.dense_4h_to_h.bias": "mlp",
        "gpt_neox.layers.3.input_layernorm.weight": "norms",
        "transformer.wte.weight": "embeddings",
        "transformer.wpe.weight": "embeddings",
        "transformer.h.0.attn.c_proj.weight": "attention",
        "transformer.h.0.mlp.c_proj.weight": "mlp",
        "transformer.h.0.ln_2.weight": "norms",
        "transformer.ln_f.bias": "norms",
        "model.embed_tokens.weight": "embeddings",
        "model.layers.0.self_attn.qkv_proj.weight": "attention",
        "model.layers.0.self_attn.q_norm.weight": "norms",
        "model.layers.0.mlp.gate_up_proj.weight": "mlp",
        "model.layers.0.post_attention_layernorm.weight": "norms",
        "model.norm.weight": "norms",
        "lm_head.weight": "head",
        "bert.embeddings.word_embeddings.weight": "embeddings",
        "bert.embeddings.LayerNorm.weight": "norms",
        "bert.encoder.layer.0.attention.self.query.weight": "attention",
        "bert.encoder.layer.0.attention.output.dense.weight": "attention",
        "bert.encoder.layer.0.intermediate.dense.weight": "mlp",
        "bert.encoder.layer.0.output.dense.weight": "mlp",
        "bert.encoder.layer.0.output.LayerNorm.weight": "norms",
        "cls.predictions.transform.LayerNorm.weight": "head",
        "cls.predictions.bias": "head",
        "roberta.pooler.dense.weight": "head",
        "lm_head.layer_norm.weight": "head",
        "encoder.layer.0.attention.self.key.bias": "attention",
        "some.unknown.tensor": "other",
    }
    assert {n: tensor_group(n) for n in expected} == expected
    # buffers are hashed, not measured
    assert W.is_buffer("gpt_neox.layers.0.attention.masked_bias")
    assert W.is_buffer("gpt_neox.layers.0.attention.rotary_emb.inv_freq")
    assert W.is_buffer("transformer.h.0.attn.bias")
    assert not W.is_buffer("transformer.h.0.attn.c_attn.bias")
    assert not W.is_buffer("gpt_neox.layers.0.attention.query_key_value.bias")


def test_partial_duplicates_rule():
    def ck(**tensors: str) -> CheckpointWeights:
        return CheckpointWeights(W.checkpoint_fingerprint(tensors), dict(tensors))

    # norm: unchanged from the first checkpoint through c (at init), then changed: not counted.
    # emb: b's value comes back in d: counted (b holds a later checkpoint's tensor).
    sweep = [
        ck(norm="n0", emb="e0", w="w0"),
        ck(norm="n0", emb="e1", w="w1"),
        ck(norm="n0", emb="e2", w="w2"),
        ck(norm="n3", emb="e1", w="w3"),
        ck(norm="n4", emb="e4", w="w4"),
    ]
    dups = find_duplicates(["a", "b", "c", "d", "e"], sweep)
    assert dups.duplicate_of == dict.fromkeys("abcde", "")
    assert dups.partial_duplicate_of == {"a": "", "b": "d", "c": "", "d": "", "e": ""}
    assert dups.partial_tensors["b"] == ["emb"]
    # a full duplicate is never a partial one
    dups = find_duplicates(["a", "b", "c"], [sweep[0], sweep[0], sweep[1]])
    assert dups.duplicate_of == {"a": "", "b": "a", "c": ""}
    assert set(dups.partial_duplicate_of.values()) == {""}


def test_sentence_transformers_subfolder_and_missing_weights(run, tmp_path):
    st = tmp_path / "st"
    shutil.copytree(run / "step0", st / "0_Transformer")
    module = {"path": "0_Transformer", "type": "sentence_transformers.models.Transformer"}
    (st / "modules.json").write_text(json.dumps([module]))
    want = fingerprint_checkpoint(run / "step0").fingerprint
    assert fingerprint_checkpoint(st).fingerprint == want
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="holds no weights"):
        stored_weight_files(empty)
    broken = tmp_path / "broken"
    shutil.copytree(run / "step2", broken)
    next(broken.glob("model-*.safetensors")).unlink()
    with pytest.raises(FileNotFoundError, match="names shards that are not there"):
        stored_weight_files(broken)


def test_different_tensors_are_refused(run, tmp_path):
    tensors = load_file(run / "step4" / "model.safetensors")
    del tensors[FROZEN]
    other = write_checkpoint(tmp_path / "other", tensors, run / "step0" / "config.json")
    with pytest.raises(ValueError, match="store different tensors"):
        compare(run / "step4", [other])


def test_hub_revisions_sharing_blobs_are_hashed_once(run, tmp_path, monkeypatch):
    """An HF cache: revisions whose weight files are symlinks to the same blob."""
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    for blob, label in (("a", "step4"), ("b", "step8")):
        shutil.copy(run / label / "model.safetensors", blobs / blob)
    revisions = {"step4": "a", "step5": "a", "step8": "b"}
    for rev, blob in revisions.items():
        snap = tmp_path / "snapshots" / rev
        snap.mkdir(parents=True)
        shutil.copy(run / "step0" / "config.json", snap / "config.json")
        os.symlink(os.path.relpath(blobs / blob, snap), snap / "model.safetensors")
    calls = []
    real = W.fingerprint_checkpoint
    monkeypatch.setattr(W, "fingerprint_checkpoint", lambda d, t=1: calls.append(d) or real(d, t))
    ds = weights_dataset([(r, tmp_path / "snapshots" / r) for r in revisions])
    assert len(calls) == 2
    assert ds["duplicate_of"].values.tolist() == ["", "step4", ""]


def test_gate_message_names_the_labels_and_both_ways_out(ds):
    msg = duplicates_message("tiny", ds, labels_key="steps")
    assert "step1 and step2 hold the same weights as step0" in msg
    assert ds["fingerprint"].sel(step="step0").item()[:12] in msg
    assert "models.tiny.steps" in msg and "integrity.duplicates: keep" in msg
    assert "step8 holds 1 tensor(s) of step16 (gpt_neox.embed_in.weight)" in msg
    assert "step1, step2 and step8" in msg
    assert "step8" not in duplicates_message("tiny", ds, partial=False)
    clean = ds.isel(step=[0, 3, 5])
    clean["partial_duplicate_of"][:] = ""
    assert duplicates_message("tiny", clean) == ""


def test_figure_draws_duplicates_hollow_and_rings_the_jump(ds, tmp_path):
    from repgeom.plots.common import save_figure
    from repgeom.plots.weights import weights_figure

    fig = weights_figure(ds)
    ax = fig.axes[0]
    hollow = [line for line in ax.get_lines() if line.get_gid() == "duplicates"]
    assert len(hollow) == 3  # one per reference line
    for line in hollow:
        assert line.get_xdata().tolist() == [1.0, 2.0]
        assert tuple(line.get_markerfacecolor()) == tuple(ax.get_facecolor())
    rings = [line for line in ax.get_lines() if line.get_gid() == "discontinuities"]
    assert len(rings) == 1 and rings[0].get_xdata().tolist() == [8.0]
    assert rings[0].get_markeredgecolor() == "red" and rings[0].get_markerfacecolor() == "none"
    partial = [line for line in ax.get_lines() if line.get_gid() == "partial_duplicates"]
    assert partial[0].get_xdata().tolist() == [8.0]
    assert ax.get_xscale() == "symlog"
    assert any(line.get_gid() == "duplicates" for line in fig.axes[1].get_lines())
    out = tmp_path / "weights.png"
    save_figure(fig, out)
    assert out.stat().st_size > 10_000
