"""Models: training is seeded and saves checkpoints; local directories; the schedules."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from repgeom.activations.checkpoint import local_checkpoints
from repgeom.activations.models import Checkpoint, build_model, objective
from repgeom.activations.training import TrainConfig, learning_rate, train
from repgeom.data.tokens import Windows
from repgeom.steps import pythia_schedule, step_number
from repgeom.workflow.config import options
from repgeom.workflow.plan import model_checkpoints
from tests.conftest import TINY


def test_pythia_schedule():
    assert pythia_schedule(1024, 4) == [
        0,
        1,
        2,
        4,
        8,
        16,
        32,
        64,
        128,
        256,
        512,
        640,
        768,
        896,
        1024,
    ]
    assert pythia_schedule(8, 2) == [0, 1, 2, 4, 6, 8]


def test_learning_rate_warmup_and_cosine():
    cfg = options(
        TrainConfig, "$defs.training", dict(steps=100, lr=1.0, warmup=10, min_lr_ratio=0.1)
    )
    assert learning_rate(0, cfg) == pytest.approx(0.1)
    assert learning_rate(9, cfg) == pytest.approx(1.0)
    assert learning_rate(10, cfg) == pytest.approx(1.0)
    assert learning_rate(55, cfg) == pytest.approx(0.55)
    assert learning_rate(100, cfg) == pytest.approx(0.1)
    lrs = [learning_rate(s, cfg) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))


def run(arch, tokenizer, windows, seed=0):
    model = build_model(arch, TINY, tokenizer, seed=seed)
    saved = {}
    cfg = options(
        TrainConfig,
        "$defs.training",
        dict(
            steps=6,
            batch_size=4,
            lr=3e-3,
            warmup=2,
            checkpoints=[0, 3, 6],
            seed=seed,
            eval_tokens=256,
        ),
    )
    tr = Windows(windows.ids[:-8], windows.lengths[:-8])
    ev = Windows(windows.ids[-8:], windows.lengths[-8:])
    ids = {"special": sorted(tokenizer.all_special_ids), "mask": tokenizer.mask_token_id}

    def save(step, m):
        saved[step] = {k: v.clone() for k, v in m.state_dict().items()}

    log = train(model, tr, ev, ids, cfg, save)
    return log, saved


@pytest.mark.parametrize("arch", ["gpt_neox", "bert"])
def test_training_is_seeded_and_checkpoints(arch, tokenizer, windows):
    log_a, saved_a = run(arch, tokenizer, windows)
    log_b, saved_b = run(arch, tokenizer, windows)
    assert sorted(saved_a) == [0, 3, 6]
    np.testing.assert_array_equal(log_a.train_loss.values, log_b.train_loss.values)
    for step in saved_a:
        for k in saved_a[step]:
            assert torch.equal(saved_a[step][k], saved_b[step][k]), (step, k)
    assert not torch.equal(
        saved_a[0][
            "lm_head.weight" if arch == "gpt_neox" else "bert.embeddings.word_embeddings.weight"
        ],
        saved_a[6][
            "lm_head.weight" if arch == "gpt_neox" else "bert.embeddings.word_embeddings.weight"
        ],
    )
    ev = log_a.eval_loss.values
    assert np.isfinite(ev[[0, 3, 6]]).all() and np.isnan(ev[[1, 2, 4, 5]]).all()
    assert ev[6] < ev[0]
    assert log_a.tokens_seen.values[6] == 6 * 4 * 32
    assert {"long_name", "units"} <= set(log_a.train_loss.attrs)


def test_local_directory_layouts(tmp_path, tokenizer):
    model = build_model("gpt_neox", TINY, tokenizer, seed=0)
    model.save_pretrained(tmp_path / "single")
    for name in ("step10", "step20"):
        model.save_pretrained(tmp_path / "many" / name)
    (tmp_path / "many" / "notes").mkdir()
    assert list(local_checkpoints(tmp_path / "single")) == ["final"]
    assert list(local_checkpoints(tmp_path / "many")) == ["step10", "step20"]
    assert [
        c.label for c in model_checkpoints({"source": "local", "path": str(tmp_path / "many")})[0]
    ] == ["step10", "step20"]
    with pytest.raises(FileNotFoundError, match="holds no checkpoint"):
        local_checkpoints(tmp_path / "many" / "notes")
    loaded = Checkpoint(str(tmp_path / "many" / "step20")).load()
    assert objective(loaded) == "causal"
    for a, b in zip(loaded.state_dict().values(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_step_number():
    assert step_number("step512") == 512 and np.isnan(step_number("final"))


def test_unknown_architecture(tokenizer):
    with pytest.raises(ValueError, match="unknown architecture 'mamba'"):
        build_model("mamba", TINY, tokenizer, seed=0)
