"""A researcher's own run directories and models, read right or refused by name (issue 28):
a ``checkpoint-best`` symlink, trainer_state.json steps, "last" never an unnumbered label, a
model's context and vocabulary against its tokenizer, a PEFT adapter directory."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from repgeom.activations.checkpoint import (
    checkpoint_links,
    local_checkpoints,
    planning_step,
)
from repgeom.steps import Checkpoint, last_checkpoint
from repgeom.workflow.plan import (
    local_model_problems,
    model_checkpoints,
    model_tokenizer_problems,
)
from tests.test_steps import save_tiny
from tests.workflow import planned_wildcards, snakemake

TRAINER = ["checkpoint-5", "checkpoint-50", "checkpoint-500"]


def fake_checkpoint(path, step=None):
    """A checkpoint directory planning can list (config.json), with a trainer_state.json
    when ``step`` is given."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text("{}")
    if step is not None:
        (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))


def write_config(tmp_path, docs, models, tokenizers):
    (tmp_path / "text.txt").write_text("\n\n".join(docs[:40]), encoding="utf-8")
    cfg = {
        "corpora": {"text": {"kind": "text", "path": str(tmp_path / "text.txt")}},
        "tokenizers": tokenizers,
        "models": models,
        "extraction": {"max_tokens": 256, "device": "cpu"},
        "bottleneck": {"heads": {"models": []}, "ngram": {"corpora": []}},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    return tmp_path / "c.yaml"


def test_a_best_symlink_is_skipped_with_a_note_and_last_is_the_last_numbered(tmp_path, docs):
    run = tmp_path / "run"
    for i, label in enumerate(TRAINER):
        save_tiny(run / label, seed=i)
    (run / "checkpoint-best").symlink_to("checkpoint-50", target_is_directory=True)
    model = {"source": "local", "path": str(run)}
    assert sorted(local_checkpoints(run)) == sorted(TRAINER)
    assert checkpoint_links(run) == {"checkpoint-best": "checkpoint-50"}
    assert [c.label for c in model_checkpoints(model)[0]] == TRAINER
    assert planning_step(model) == "checkpoint-500"
    # listed by name it is refused, pointing at the checkpoint it is
    (msg,) = local_model_problems("run", {**model, "steps": ["checkpoint-5", "checkpoint-best"]})
    assert "checkpoint-best is a link to checkpoint-50" in msg and "'checkpoint-50'" in msg
    cfg = write_config(
        tmp_path,
        docs,
        {"run": {**model, "tokenizer": "own"}},
        {"own": {"kind": "from_model", "model": "run", "window": 32}},
    )
    res = snakemake(tmp_path, cfg, "-n")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "checkpoint-best -> checkpoint-50" in res.stderr
    assert "have no training step" not in res.stderr
    assert planned_wildcards(res)["step"] == set(TRAINER)
    # CKA to the final checkpoint is against checkpoint-500, for every step
    out = res.stdout + res.stderr
    assert "checkpoint-best" not in out.replace("checkpoint-best -> checkpoint-50", "")
    sims = [b for b in out.split("rule similarity:")[1:]]
    assert sims and all("activations/run/checkpoint-500/text.zarr" in b for b in sims)


def test_trainer_state_gives_an_unnumbered_label_its_step(tmp_path):
    run = tmp_path / "run"
    fake_checkpoint(run / "checkpoint-5")
    fake_checkpoint(run / "checkpoint-50")
    fake_checkpoint(run / "best", step=20)  # no number in its name, but the Trainer's state
    model = {"source": "local", "path": str(run)}
    ordered, unnumbered = model_checkpoints(model)
    assert [(c.label, c.step) for c in ordered] == [
        ("checkpoint-5", 5),
        ("best", 20),
        ("checkpoint-50", 50),
    ]
    assert unnumbered == []
    # the Trainer's own final model in output_dir (trainer.save_model + save_state)
    out = tmp_path / "out"
    fake_checkpoint(out / "checkpoint-5")
    fake_checkpoint(out / "checkpoint-50")
    fake_checkpoint(out, step=60)
    ordered, unnumbered = model_checkpoints({"source": "local", "path": str(out)})
    assert [(c.label, c.step) for c in ordered][-1] == ("final", 60) and unnumbered == []
    assert planning_step({"source": "local", "path": str(out)}) == "final"


def test_last_is_never_an_unnumbered_label_unless_the_config_numbers_it(tmp_path):
    out = tmp_path / "out"
    fake_checkpoint(out / "checkpoint-5")
    fake_checkpoint(out / "checkpoint-50")
    fake_checkpoint(out)  # a final model without trainer_state.json: its step is unknown
    model = {"source": "local", "path": str(out)}
    ordered, unnumbered = model_checkpoints(model)
    assert [c.label for c in ordered] == ["checkpoint-5", "checkpoint-50", "final"]
    assert unnumbered == ["final"]
    assert last_checkpoint(ordered).label == "checkpoint-50"
    assert planning_step(model) == "checkpoint-50"
    numbered = {**model, "steps": {"checkpoint-5": 5, "checkpoint-50": 50, "final": 60}}
    assert last_checkpoint(model_checkpoints(numbered)[0]).label == "final"
    hub = {"source": "hub", "revisions": ["main", "step10", "step2"]}
    assert last_checkpoint(model_checkpoints(hub)[0]).label == "step10"
    assert last_checkpoint([Checkpoint("main"), Checkpoint("best")]).label == "best"
    with pytest.raises(ValueError):
        last_checkpoint([])


def save_model(path, family, vocab, **context):
    """A tiny GPT-NeoX or GPT-2 model (safetensors) of ``vocab`` embedding rows."""
    from transformers import GPT2Config, GPT2LMHeadModel, GPTNeoXConfig, GPTNeoXForCausalLM

    if family == "gpt_neox":
        cfg = GPTNeoXConfig(
            vocab_size=vocab,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            **context,
        )
        GPTNeoXForCausalLM(cfg).save_pretrained(path)
    else:
        ids = {"bos_token_id": 0, "eos_token_id": 0}
        cfg = GPT2Config(vocab_size=vocab, n_embd=16, n_layer=1, n_head=2, **ids, **context)
        GPT2LMHeadModel(cfg).save_pretrained(path)


@pytest.mark.parametrize(
    ("family", "context", "key"),
    [
        ("gpt_neox", {"max_position_embeddings": 64}, "max_position_embeddings 64"),
        ("gpt2", {"n_positions": 64}, "n_positions 64"),
    ],
)
def test_a_window_longer_than_the_context_stops_at_planning(
    tmp_path, docs, tokenizer, family, context, key
):
    save_model(tmp_path / "short", family, len(tokenizer), **context)
    tokenizer.save_pretrained(tmp_path / "short")
    cfg = write_config(
        tmp_path,
        docs,
        {"short": {"source": "local", "path": str(tmp_path / "short"), "tokenizer": "own"}},
        {"own": {"kind": "from_model", "model": "short", "window": 128}},
    )
    res = snakemake(tmp_path, cfg, "-n")
    assert res.returncode != 0
    err = res.stderr
    assert "'tokenizers.own.window': 128 tokens" in err and "model 'short'" in err
    assert "at most 64 positions" in err and key in err
    assert "tokenizers.own.window ≤ 64" in err
    assert "IndexError" not in err and not (tmp_path / "results").exists()


def test_a_tokenizer_larger_than_the_embedding_stops_at_planning(tmp_path, docs):
    from repgeom.data.tokenization import train_bpe

    big = train_bpe(docs, 384)
    assert len(big) == 384
    save_model(tmp_path / "big", "gpt_neox", 384, max_position_embeddings=64)
    big.save_pretrained(tmp_path / "big")
    save_model(tmp_path / "small", "gpt_neox", 256, max_position_embeddings=64)
    models = {
        "big": {"source": "local", "path": str(tmp_path / "big"), "tokenizer": "bigtok"},
        "small": {"source": "local", "path": str(tmp_path / "small"), "tokenizer": "bigtok"},
    }
    tokenizers = {"bigtok": {"kind": "from_model", "model": "big", "window": 32}}
    res = snakemake(tmp_path, write_config(tmp_path, docs, models, tokenizers), "-n")
    assert res.returncode != 0
    err = res.stderr
    assert "tokenizer 'bigtok' has 384 tokens but model 'small' has 256 embedding rows" in err
    assert "use the model's own tokenizer" in err and "model: small" in err
    assert "model 'big'" not in err and not (tmp_path / "results").exists()
    # a model whose own saved tokenizer outgrew its embedding (tokens added, never resized)
    big.save_pretrained(tmp_path / "small")
    full = {
        "models": {"small": {**models["small"], "tokenizer": "own"}},
        "tokenizers": {"own": {"kind": "from_model", "model": "small", "window": 32}},
    }
    (msg,) = model_tokenizer_problems(full)
    assert "384 tokens" in msg and "256 embedding rows" in msg
    assert "resize_token_embeddings" in msg


def test_trained_models_are_checked_from_their_config():
    from repgeom.workflow.config import load_config, load_config_file
    from tests.workflow import ROOT

    schema = ROOT / "config" / "schema.yaml"
    for name in ("config.yaml", "test.yaml"):
        cfg = load_config(load_config_file(ROOT / "config" / name), schema)
        assert model_tokenizer_problems(cfg) == [], name
    tokenizers = {"bpe": {"kind": "train", "corpus": "c", "vocab_size": 512, "window": 64}}
    model = {"source": "train", "architecture": "roberta", "tokenizer": "bpe"}
    cfg = {
        "tokenizers": tokenizers,
        "models": {"enc": {**model, "config": {"max_position_embeddings": 64}}},
    }
    (msg,) = model_tokenizer_problems(cfg)  # RoBERTa's positions start after padding_idx 1
    assert "at most 62 positions" in msg and "tokenizers.bpe.window ≤ 62" in msg
    cfg["models"]["enc"]["config"] = {"max_position_embeddings": 66}
    assert model_tokenizer_problems(cfg) == []
    cfg["models"]["enc"]["config"] = {"max_position_embeddings": 66, "vocab_size": 256}
    (msg,) = model_tokenizer_problems(cfg)
    assert "512 tokens" in msg and "256 embedding rows" in msg and "remove vocab_size" in msg


def test_an_adapter_directory_is_named_with_its_base_and_how_to_merge(tmp_path):
    lora = tmp_path / "lora"
    lora.mkdir()
    (lora / "adapter_config.json").write_text(
        json.dumps({"peft_type": "LORA", "base_model_name_or_path": "EleutherAI/pythia-14m"})
    )
    (lora / "adapter_model.safetensors").write_bytes(b"")
    (msg,) = local_model_problems("tuned", {"source": "local", "path": str(lora)})
    assert "'models.tuned.path'" in msg and "PEFT adapter of 'EleutherAI/pythia-14m'" in msg
    assert "merge_and_unload()" in msg and "save_pretrained" in msg
    # a Trainer output_dir of LoRA checkpoints
    run = tmp_path / "run"
    (run / "checkpoint-10").mkdir(parents=True)
    (run / "checkpoint-10" / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": "gpt2"})
    )
    with pytest.raises(FileNotFoundError, match="PEFT adapter of 'gpt2'"):
        local_checkpoints(run)


def test_extraction_refuses_windows_the_model_cannot_read(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    from repgeom.activations.extraction import extract
    from repgeom.data.tokens import Windows

    model = GPT2LMHeadModel(
        GPT2Config(vocab_size=256, n_embd=16, n_layer=1, n_head=2, n_positions=16)
    )
    long = Windows(np.ones((2, 32), dtype=np.int32), np.array([32, 20]))
    with pytest.raises(ValueError, match=r"at most 16 positions \(n_positions 16\).*32 long"):
        extract(model.eval(), long, tmp_path / "a.zarr", 2, {"model": "m", "step": "s"})
    ids = np.ones((2, 8), dtype=np.int32)
    ids[1, 3] = 300
    with pytest.raises(ValueError, match="token id 300 has no row in the 256-row"):
        extract(model.eval(), Windows(ids, np.array([8, 8])), tmp_path / "b.zarr", 2, {})
    assert not (tmp_path / "a.zarr").exists() and not (tmp_path / "b.zarr").exists()
