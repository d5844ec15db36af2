"""Training runs saved by other frameworks, through the workflow as a user runs it: Trainer
``checkpoint-N`` directories, OLMo ``stepN-tokensM`` labels and labels the config numbers, with
alphabetical and numeric order different (9, 80, 700)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import yaml

from repgeom.activations.models import build_model
from repgeom.activations.store import ActivationStore
from repgeom.data.tokens import tokens_attrs
from repgeom.io import read_dataset
from tests.conftest import TINY
from tests.workflow import snakemake, table_rows

pytestmark = pytest.mark.slow

LAYOUTS = {
    "trainer": ["checkpoint-9", "checkpoint-80", "checkpoint-700"],
    "olmo": ["step9-tokens37K", "step80-tokens328K", "step700-tokens3M"],
    "named": ["b-first", "a-second"],  # no step in the label: the config gives it
}
STEP_NUMBERS = {"trainer": [9, 80, 700], "olmo": [9, 80, 700], "named": [9, 80]}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tokenizer, docs):
    root = tmp_path_factory.mktemp("runs")
    for m, (name, labels) in enumerate(LAYOUTS.items()):
        for i, label in enumerate(sorted(labels)):  # different weights at every step
            model = build_model("gpt_neox", TINY, tokenizer, seed=10 * m + i)
            model.save_pretrained(root / name / label)
            tokenizer.save_pretrained(root / name / label)  # as the Trainer saves it
    (root / "mytext.txt").write_text("\n\n".join(docs[:200]), encoding="utf-8")
    cfg = {
        "corpora": {"mytext": {"kind": "text", "path": str(root / "mytext.txt")}},
        "tokenizers": {"runtok": {"kind": "from_model", "model": "trainer", "window": 32}},
        "models": {
            "trainer": {"source": "local", "path": str(root / "trainer"), "tokenizer": "runtok"},
            "olmo": {"source": "local", "path": str(root / "olmo"), "tokenizer": "runtok"},
            "named": {
                "source": "local",
                "path": str(root / "named"),
                "tokenizer": "runtok",
                "steps": {"b-first": 9, "a-second": 80},
            },
        },
        "extraction": {"max_tokens": 256, "batch_size": 16, "device": "cpu"},
        "metrics": {
            "geometry": {
                "id_sample": 64,
                "id_repeats": 2,
                "mle_k": 5,
                "top_k": 8,
                "gride_scales": 4,
                "gride_scale": 4,
                "twonn_bootstrap": 20,
            }
        },
        "bottleneck": {"heads": {"token_budget": 512, "batch_size": 128}, "ngram": {"k": 32}},
        "logit_lens": {},
        "shape_of_learning": {},
    }
    (root / "config.yaml").write_text(yaml.safe_dump(cfg))
    return root, cfg


@pytest.fixture(scope="module")
def run_dir(runs):
    root, _ = runs
    res = snakemake(root, root / "config.yaml", "--cores", "2")
    assert res.returncode == 0, res.stderr[-5000:]
    return root


def test_gathered_datasets_in_step_order_with_step_numbers(run_dir):
    gathered = sorted((run_dir / "results" / "metrics").glob("*/*.nc"))
    seen = set()
    for path in gathered:
        ds = read_dataset(path)
        if "step" not in ds.dims:
            continue
        model = path.stem
        seen.add((path.parent.name, model))
        assert list(ds.step.values) == LAYOUTS[model], path
        np.testing.assert_array_equal(ds.step_number, STEP_NUMBERS[model], err_msg=str(path))
        if model == "olmo":
            np.testing.assert_array_equal(ds.tokens_seen, [37_000, 328_000, 3_000_000])
        else:
            assert "tokens_seen" not in ds.coords
    families = {family for family, _ in seen}
    assert {"anisotropy", "eval_loss", "lm_head", "logit_lens"} <= families, families
    assert {m for _, m in seen} == set(LAYOUTS)
    # each checkpoint is its own model: the gathered values follow the label, not its position
    ds = read_dataset(run_dir / "results" / "metrics" / "eval_loss" / "trainer.nc")
    for label in LAYOUTS["trainer"]:
        store = ActivationStore(
            run_dir / "results" / "activations" / "trainer" / label / "mytext.zarr"
        )
        assert float(ds.eval_loss.sel(step=label, corpus="mytext")) == store.attrs["eval_loss"]


def test_last_checkpoint_is_the_numerically_last(run_dir):
    results = run_dir / "results"
    for model, labels in LAYOUTS.items():
        heads = sorted(p.stem for p in (results / "heads" / model).glob("*.nc"))
        assert heads == [labels[-1]], (model, heads)
    source = json.loads(
        tokens_attrs(results / "tokens" / "runtok" / "mytext.zarr")["tokenizer_source"]
    )
    assert source["path"].endswith("trainer/checkpoint-700")
    rows = table_rows(results / "tables" / "bottleneck" / "best_vs_final.csv")
    finals = {r["model"]: r["final_step"] for r in rows}
    assert finals == {m: labels[-1] for m, labels in LAYOUTS.items()}


def test_figures_over_training_are_built(run_dir):
    figures = run_dir / "results" / "figures"
    for name in (
        "shape_of_learning/intrinsic_dimension_by_step.png",
        "bottleneck/entropy_cosine_loss.png",
    ):
        matches = list(figures.glob(name.replace(".png", "*.png")))
        assert matches, f"{name} not built: {sorted(p.name for p in figures.rglob('*.png'))}"


def test_a_missing_step_stops_before_any_job(runs, tmp_path):
    root, cfg = runs
    cfg = json.loads(json.dumps(cfg))
    cfg["models"]["trainer"]["steps"] = ["checkpoint-9", "checkpoint-999"]
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    res = snakemake(tmp_path, tmp_path / "c.yaml", "--cores", "1")
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "'models.trainer.steps'" in out and "checkpoint-999" in out
    assert "checkpoint-700" in out  # the labels that exist
    assert "MissingInputException" not in out
    assert not (tmp_path / "results").exists()


def test_an_unreadable_checkpoint_stops_before_any_job(runs, tmp_path):
    root, cfg = runs
    cfg = json.loads(json.dumps(cfg))
    shutil.copytree(root / "olmo", tmp_path / "olmo")
    weights = tmp_path / "olmo" / "step80-tokens328K" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    cfg["models"]["olmo"]["path"] = str(tmp_path / "olmo")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    res = snakemake(tmp_path, tmp_path / "c.yaml", "--cores", "1")
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "model 'olmo' checkpoint 'step80-tokens328K'" in out and str(weights) in out
    assert not (tmp_path / "results").exists()


def test_labels_without_steps_are_warned_about(runs, tmp_path):
    _, cfg = runs
    cfg = json.loads(json.dumps(cfg))
    cfg["models"]["named"]["steps"] = ["b-first", "a-second"]
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    res = snakemake(tmp_path, tmp_path / "c.yaml", "-n")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "['b-first', 'a-second'] have no training step" in res.stderr
    assert "'models.named.steps' as a mapping" in res.stderr
