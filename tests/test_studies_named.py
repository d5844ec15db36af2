"""A study runs when the config names its section: a config naming one model and one corpus
plans extraction, the core metrics (geometry, similarity, checkpoint integrity) and their
figures, and no study job."""

from __future__ import annotations

import yaml

from repgeom.activations.models import build_model
from repgeom.workflow.run import named_studies
from repgeom.workflow.studies import BUILTIN, registry
from tests.conftest import TINY
from tests.workflow import planned_jobs, snakemake

CORE = {
    "corpus",
    "tokens",
    "fingerprint",
    "integrity",
    "weights",
    "weights_figure",
    "extract",
    "geometry",
    "similarity",
    "gather_metric",
    "figure_anisotropy",
    "similarity_layers_figure",
    "similarity_to_final_figure",
    "alpha_req_figure",
    "origins_figures",
    "manifest",
    "all",
}


def one_model_config(root, tokenizer, docs, **sections) -> dict:
    for i, label in enumerate(["step1", "step2"]):
        model = build_model("gpt_neox", TINY, tokenizer, seed=i)
        model.save_pretrained(root / "run" / label)
        tokenizer.save_pretrained(root / "run" / label)
    (root / "text.txt").write_text("\n\n".join(docs[:100]), encoding="utf-8")
    return {
        "corpora": {"text": {"kind": "text", "path": str(root / "text.txt")}},
        "tokenizers": {"own": {"kind": "from_model", "model": "run", "window": 32}},
        "models": {"run": {"source": "local", "path": str(root / "run"), "tokenizer": "own"}},
        **sections,
    }


def test_one_model_and_one_corpus_plan_no_study(tmp_path, tokenizer, docs):
    cfg = one_model_config(tmp_path, tokenizer, docs)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    res = snakemake(tmp_path, tmp_path / "config.yaml", "-n")
    assert res.returncode == 0, res.stderr[-3000:]
    jobs = planned_jobs(res)
    assert set(jobs) <= CORE, set(jobs) - CORE
    assert jobs["extract"] == 2 and jobs["geometry"] == 2
    out = res.stdout + res.stderr
    for study in BUILTIN:  # the start of the run says which studies run, and why
        assert f"{study} not run: the config has no '{study}' section" in out


def test_naming_a_section_runs_its_study(tmp_path, tokenizer, docs):
    cfg = one_model_config(tmp_path, tokenizer, docs, bottleneck={"heads": {"token_budget": 512}})
    cfg["logit_lens"] = {}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    res = snakemake(tmp_path, tmp_path / "config.yaml", "-n")
    assert res.returncode == 0, res.stderr[-3000:]
    jobs = planned_jobs(res)
    assert {"bottleneck_heads", "bottleneck_saturation", "logit_lens_gather"} <= set(jobs)
    assert "shape_of_learning_figure" not in jobs and "birth_variant" not in jobs
    assert "bottleneck runs: the config names its section 'bottleneck'" in res.stderr


def test_why_a_study_runs_or_not():
    why = named_studies({"birth": {}}, registry())
    assert why["birth"].startswith("runs") and why["bottleneck"].startswith("not run")
