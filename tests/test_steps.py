"""Checkpoint labels of every layout a run is saved in: parsed, ordered, numbered, checked."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest

from repgeom.activations.checkpoint import checkpoint_problem, local_checkpoints, planning_step
from repgeom.steps import (
    Checkpoint,
    as_checkpoints,
    order_checkpoints,
    parse_label,
    step_coords,
    step_number,
)
from repgeom.workflow.plan import local_model_problems, model_checkpoints

# one run of each layout, labels at steps 9, 80, 700 (alphabetical order differs but for Megatron)
LAYOUTS = [
    ["step9", "step80", "step700"],  # Pythia, this workflow
    ["checkpoint-9", "checkpoint-80", "checkpoint-700"],  # Hugging Face Trainer
    ["step9-tokens37K", "step80-tokens328K", "step700-tokens3M"],  # OLMo
    ["global_step9", "global_step80", "global_step700"],  # DeepSpeed
    ["iter_0000009", "iter_0000080", "iter_0000700"],  # Megatron-LM
    ["9", "80", "700"],  # bare integers
]


@pytest.mark.parametrize(
    ("label", "step", "tokens"),
    [
        ("step143000", 143000, None),  # Pythia, this workflow
        ("step0", 0, None),
        ("checkpoint-500", 500, None),  # Hugging Face Trainer
        ("step1000-tokens4B", 1000, 4_000_000_000),  # OLMo
        ("step20-tokens84M", 20, 84_000_000),
        ("step477000-tokens2000B", 477000, 2_000_000_000_000),
        ("step5-tokens21K", 5, 21_000),
        ("global_step500", 500, None),  # DeepSpeed
        ("iter_0001000", 1000, None),  # Megatron-LM
        ("700", 700, None),  # a bare integer
        ("final", None, None),
        ("main", None, None),
        ("ckpt-best", None, None),
        ("step", None, None),
        ("checkpoint-500-old", None, None),
    ],
)
def test_labels_parse(label, step, tokens):
    assert parse_label(label) == (step, tokens)
    assert Checkpoint.parse(label) == Checkpoint(label, step, tokens)
    expected = math.nan if step is None else float(step)
    np.testing.assert_equal(step_number(label), expected)


@pytest.mark.parametrize("labels", LAYOUTS)
def test_checkpoints_ordered_by_step_not_spelling(labels):
    # alphabetical and numeric order differ (but for Megatron's zero-padded labels)
    for given in (sorted(labels), labels[::-1]):
        ordered, unnumbered = order_checkpoints(given)
        assert [c.label for c in ordered] == labels and unnumbered == []
        assert [c.step for c in ordered] == [9, 80, 700]


def test_a_mapping_gives_steps_and_unnumbered_labels_come_last_as_listed():
    ordered, unnumbered = order_checkpoints({"b-first": 9, "a-second": 80, "step40": 40})
    assert [(c.label, c.step) for c in ordered] == [
        ("b-first", 9),
        ("step40", 40),
        ("a-second", 80),
    ]
    assert unnumbered == []
    ordered, unnumbered = order_checkpoints(["zeta", "step80", "alpha", "step9"])
    assert [c.label for c in ordered] == ["step9", "step80", "zeta", "alpha"]
    assert unnumbered == ["zeta", "alpha"]


def test_step_coords_and_params_round_trip():
    ckpts = [Checkpoint.parse("step9-tokens37K"), Checkpoint("final", 800), Checkpoint("x")]
    coords = step_coords(ckpts)
    assert coords["step"][1] == ["step9-tokens37K", "final", "x"]
    np.testing.assert_array_equal(coords["step_number"][1], [9, 800, np.nan])
    np.testing.assert_array_equal(coords["tokens_seen"][1], [37_000, np.nan, np.nan])
    assert "tokens_seen" not in step_coords([Checkpoint.parse("step9")])
    # rules pass checkpoints as dicts; labels alone are parsed
    dicts = [{"label": c.label, "step": c.step, "tokens": c.tokens} for c in ckpts]
    assert as_checkpoints(dicts) == ckpts
    assert as_checkpoints(["checkpoint-5"]) == [Checkpoint("checkpoint-5", 5)]


def save_tiny(path, seed=0):
    """A tiny GPT-NeoX checkpoint (safetensors) saved at path."""
    import torch
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    torch.manual_seed(seed)
    cfg = GPTNeoXConfig(
        vocab_size=64,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    GPTNeoXForCausalLM(cfg).save_pretrained(path)


def test_a_trainer_output_dir_lists_its_checkpoints_and_its_final_model(tmp_path):
    run = tmp_path / "run"
    for label in ("checkpoint-9", "checkpoint-80", "checkpoint-700"):
        save_tiny(run / label)
    (run / "runs").mkdir()  # TensorBoard logs: no checkpoint
    assert list(local_checkpoints(run)) == ["checkpoint-700", "checkpoint-80", "checkpoint-9"]
    model = {"source": "local", "path": str(run)}
    assert [c.label for c in model_checkpoints(model)[0]] == [
        "checkpoint-9",
        "checkpoint-80",
        "checkpoint-700",
    ]
    assert planning_step(model) == "checkpoint-700"
    save_tiny(run)  # trainer.save_model(): the final model in the output dir itself
    ordered, unnumbered = model_checkpoints(model)
    assert [c.label for c in ordered][-1] == "final" and unnumbered == ["final"]
    # a sentence-transformers directory keeps modules with a config.json in subfolders
    (run.parent / "st" / "1_Pooling").mkdir(parents=True)
    (run.parent / "st" / "1_Pooling" / "config.json").write_text("{}")
    (run.parent / "st" / "config.json").write_text("{}")
    assert list(local_checkpoints(run.parent / "st")) == ["final"]


def test_missing_steps_and_unreadable_checkpoints_are_named(tmp_path):
    run = tmp_path / "run"
    for label in ("checkpoint-9", "checkpoint-80", "checkpoint-700"):
        save_tiny(run / label)
    model = {"source": "local", "path": str(run), "steps": ["checkpoint-9", "checkpoint-999"]}
    (msg,) = local_model_problems("mine", model)
    assert "'models.mine.steps'" in msg and "checkpoint-999" in msg and "checkpoint-700" in msg
    model = {"source": "local", "path": str(run)}
    assert local_model_problems("mine", model) == []
    # a truncated weights file: the header is read, the tensors do not fit
    weights = run / "checkpoint-80" / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    (msg,) = local_model_problems("mine", model)
    assert "'mine'" in msg and "'checkpoint-80'" in msg and str(weights) in msg
    assert "truncated" in msg
    # a header cut short, a config that is no JSON, a torch file that is no zip
    weights.write_bytes(data[:20])
    assert "header claims" in checkpoint_problem(model, "checkpoint-80")
    weights.write_bytes(struct.pack("<Q", 4) + b"{no}")
    assert "not valid JSON" in checkpoint_problem(model, "checkpoint-80")
    weights.write_bytes(data)
    assert checkpoint_problem(model, "checkpoint-80") is None
    # a sharded checkpoint with a shard missing
    index = run / "checkpoint-80" / "model.safetensors.index.json"
    weights.rename(weights.with_name("model-00001-of-00002.safetensors"))
    shards = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    index.write_text(json.dumps({"weight_map": {"a": shards[0], "b": shards[1]}}))
    assert f"not there: ['{shards[1]}']" in checkpoint_problem(model, "checkpoint-80")
    config = run / "checkpoint-9" / "config.json"
    config.write_text('{"architectures": ["GPTNeoXForCausalLM"], ')
    assert str(config) in checkpoint_problem(model, "checkpoint-9")
    config.write_text(json.dumps({"architectures": ["GPTNeoXForCausalLM"]}))
    (run / "checkpoint-700" / "model.safetensors").unlink()
    (run / "checkpoint-700" / "pytorch_model.bin").write_bytes(b"PK\x03\x04 cut")
    assert "pytorch_model.bin" in checkpoint_problem(model, "checkpoint-700")


@pytest.mark.parametrize(
    ("labels", "numbers", "ordinal"),
    [
        (["checkpoint-9", "checkpoint-80", "checkpoint-700"], [9, 80, 700], False),
        (["early", "late", "final"], [np.nan, np.nan, np.nan], True),
        (["step9", "step80", "final"], [9, 80, np.nan], True),
    ],
)
def test_id_by_step_figure_has_every_checkpoint_on_its_axis(labels, numbers, ordinal):
    import xarray as xr

    from repgeom.shape_of_learning.plots import by_step

    values = np.arange(2 * 3 * 2, dtype=float).reshape(2, 3, 2) + 1.0  # (layer, step, repeat)
    ds = xr.Dataset(
        {"twonn": (("corpus", "positions", "layer", "step", "repeat"), values[None, None])},
        coords={
            "corpus": ["c"],
            "positions": ["all"],
            "layer": [0, 1],
            "step": labels,
            "step_number": ("step", numbers),
        },
    )
    fig = by_step({"m": ds}, "twonn")
    ax = fig.axes[0]
    line = ax.lines[0]
    np.testing.assert_array_equal(line.get_ydata(), values[0].mean(axis=1))
    expected_x = np.arange(3) if ordinal else numbers
    np.testing.assert_array_equal(line.get_xdata(), expected_x)
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert (ticks == labels) == ordinal
    assert ax.get_xscale() == ("linear" if ordinal else "symlog")


@pytest.mark.parametrize("labels", LAYOUTS)
def test_a_run_directory_of_each_layout_is_planned_in_step_order(tmp_path, labels):
    for label in labels:
        (tmp_path / label).mkdir()
        (tmp_path / label / "config.json").write_text("{}")
    model = {"source": "local", "path": str(tmp_path)}
    ordered, unnumbered = model_checkpoints(model)
    assert [c.label for c in ordered] == labels and unnumbered == []
    assert planning_step(model) == labels[-1]
    hub = {"source": "hub", "revisions": sorted(labels)}
    assert [c.label for c in model_checkpoints(hub)[0]] == labels
