"""Every paper config plans what its paper needs (models, checkpoints, corpora, studies), and it
(and the test config) plans offline from the repository root exactly as the README shows, with
nothing of the embedded default mixed in."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from repgeom.birth.plan import study_variants
from repgeom.bottleneck import plan as bottleneck_plan
from repgeom.languages import plan as languages_plan
from repgeom.languages.estimates import ID_OPTIONS, id_estimator
from repgeom.languages.plan import expand_corpora
from repgeom.logit_lens.plan import lens_models
from repgeom.workflow.config import (
    check_references,
    load_config,
    load_config_file,
    load_yaml,
    schema_defaults,
)
from repgeom.workflow.paths import Paths
from repgeom.workflow.plan import (
    extraction_corpora,
    model_checkpoints,
    model_steps,
    unnamed_sections,
)
from tests.workflow import ROOT, planned_jobs, planned_wildcards, snakemake_at_root

PAPERS = sorted((ROOT / "config" / "paper").glob("*.yaml"))
CONFIGS = [*PAPERS, ROOT / "config" / "test.yaml"]
SCHEMA = ROOT / "config" / "schema.yaml"


def plan(name: str, results: Path) -> SimpleNamespace:
    """What the workflow plans from config/paper/NAME.yaml, offline, with the functions
    rules/*.smk call (data and models that are not here change nothing in it)."""
    raw = load_config_file(ROOT / "config" / "paper" / f"{name}.yaml")
    cfg = unnamed_sections(load_config(raw, SCHEMA), raw)
    cfg["corpora"] = expand_corpora(cfg["corpora"], [])  # [] collects the absent files
    check_references(cfg)
    steps = {m: model_steps(v) for m, v in cfg["models"].items()}
    extract = extraction_corpora(cfg)
    errors: list[str] = []
    out = SimpleNamespace(
        config=cfg,
        steps=steps,
        extract=extract,
        logit_lens=lens_models(cfg, errors),
        bottleneck=bottleneck_plan.study_plan(cfg, steps, extract, Paths(str(results))),
        languages=languages_plan.study_plan(cfg, steps, Paths(str(results))),
        birth=(
            study_variants(cfg["birth"], cfg["corpora"], "corpus" in raw["birth"])
            if "birth" in raw
            else {}
        ),
    )
    assert errors == []
    return out


def studies(p: SimpleNamespace) -> set[str]:
    """The studies a plan runs."""
    found = {
        "geometry": bool(p.extract and p.config["models"]),
        "logit_lens": bool(p.logit_lens),
        "bottleneck": bool(p.bottleneck["models"]),
        "languages": bool(p.languages["checkpoints"]),
        "birth": bool(p.birth),
    }
    return {k for k, v in found.items() if v}


PAPER_STUDIES = {
    "shape_of_learning": {"geometry"},
    "bottleneck": {"geometry", "bottleneck"},
    "languages": {"languages"},
    "birth": {"birth"},
}


def test_every_paper_config_is_checked_here():
    assert sorted(p.stem for p in PAPERS) == sorted(PAPER_STUDIES)


@pytest.mark.parametrize("name", sorted(PAPER_STUDIES))
def test_paper_config_runs_its_papers_studies_only(name, tmp_path):
    assert studies(plan(name, tmp_path / "results")) == PAPER_STUDIES[name]


# Pythia's checkpoints: step0, log-spaced 1 … 512, then every 1000 steps up to 143000
PYTHIA_LOG = [f"step{2**i}" for i in range(10)]
PYTHIA_THOUSANDS = [f"step{1000 * 2**i}" for i in range(7)] + ["step100000", "step143000"]


def assert_checkpoints(model: dict, labels: list[str]) -> None:
    """The model's checkpoints, in training order, each with the step its label names."""
    ordered, unnumbered = model_checkpoints(model)
    assert [c.label for c in ordered] == labels and unnumbered == []
    assert [c.step for c in ordered] == [int(s.removeprefix("step")) for s in labels]


def test_shape_of_learning_plans_pythia_over_training_and_the_encoders(tmp_path):
    p = plan("shape_of_learning", tmp_path / "results")
    models = p.config["models"]
    pythia = [f"pythia-{s}-deduped" for s in ("70m", "160m", "410m")]
    assert sorted(models) == sorted([*pythia, "bert-base", "roberta-base"])
    for name in pythia:
        assert models[name]["id"] == f"EleutherAI/{name}"
        # step1 and step2 serve step0's weights (EleutherAI/pythia #83, #198): not swept
        assert_checkpoints(models[name], ["step0", *PYTHIA_LOG[2:], *PYTHIA_THOUSANDS])
        assert models[name]["tokenizer"] == "pythia"
    assert p.config["tokenizers"]["pythia"]["model"] in pythia
    assert models["bert-base"]["id"] == "google-bert/bert-base-uncased"
    assert models["roberta-base"]["id"] == "FacebookAI/roberta-base"
    assert p.steps["bert-base"] == p.steps["roberta-base"] == ["main"]
    # enwik8 as 128 seeded chunks of 512 characters, and random tokens; both extracted
    enwik8 = p.config["corpora"]["enwik8"]
    assert (enwik8["kind"], enwik8["n_chunks"], enwik8["chunk_chars"]) == ("text", 128, 512)
    assert p.config["corpora"]["random"]["kind"] == "random_tokens"
    assert p.extract == ["enwik8", "random"]
    assert p.config["metrics"]["geometry"]["positions"] == ["all", "no_first"]


def test_bottleneck_plans_the_pythia_suite_heads_and_ngrams(tmp_path):
    p = plan("bottleneck", tmp_path / "results")
    models = p.config["models"]
    over_training = [f"pythia-{s}" for s in ("14m", "31m", "70m", "160m", "410m")]
    references = ["pythia-1b", "pythia-1.4b"]
    assert sorted(models) == sorted([*over_training, *references, "gpt2"])
    for name in over_training + references:
        assert models[name]["id"] == f"EleutherAI/{name}"
        assert models[name]["tokenizer"] == "pythia"
    for name in over_training:
        assert_checkpoints(models[name], ["step0", *PYTHIA_THOUSANDS])
    for name in references:
        assert p.steps[name] == ["step143000"]  # the larger models: final checkpoints only
    assert (models["gpt2"]["id"], p.steps["gpt2"]) == ("openai-community/gpt2", ["main"])
    bn = p.bottleneck
    assert sorted(bn["models"]) == sorted(models) and bn["skipped"] == {}
    assert p.extract == bn["eval_corpora"] == ["enwik8"]
    assert bn["heads"] == [("pythia-1b", "step143000")] and bn["heads_corpus"] == "enwik8"
    assert bn["ngram"] == [("pythia", "enwik8"), ("gpt2", "enwik8")]  # W-error, two tokenizers


def test_languages_plans_flores_scripts_and_blimp_on_three_models(tmp_path):
    p = plan("languages", tmp_path / "results")
    ids = {name: m["id"] for name, m in p.config["models"].items()}
    assert ids == {
        "phi-3.5-mini": "microsoft/Phi-3.5-mini-instruct",
        "phi-3-mini": "microsoft/Phi-3-mini-4k-instruct",
        "mbert": "google-bert/bert-base-multilingual-cased",
    }
    assert sorted(p.languages["checkpoints"]) == sorted((m, "main") for m in ids)
    [flores] = p.languages["groups"]
    assert flores["origin"] == "flores" and flores["reference"] == "flores-eng_Latn"
    assert len(flores["members"]) == 14
    assert {"eng_Latn", "rus_Cyrl", "arb_Arab", "zho_Hans", "hin_Deva"} <= set(flores["members"])
    # the same language in Latin and Arabic script, side by side
    assert flores["script_panels"] == {
        "flores-ace_Latn": "ace",
        "flores-ace_Arab": "ace",
        "flores-bjn_Latn": "bjn",
        "flores-bjn_Arab": "bjn",
    }
    [blimp] = p.languages["pairs"]
    assert (blimp["origin"], blimp["corpora"]) == ("minimal_pairs", ["blimp-good", "blimp-bad"])
    # scikit-dimension's TwoNN (discard 0.1, least squares) on sentences; no spine extraction
    section = p.config["languages"]
    name = id_estimator(section["id_estimator"])
    assert (name, ID_OPTIONS.twonn_discard, ID_OPTIONS.twonn_fit) == ("twonn", 0.1, "lsq")
    assert p.extract == []


def test_birth_plans_the_five_variants_at_the_papers_scale(tmp_path):
    p = plan("birth", tmp_path / "results")
    assert p.config["corpora"]["shakespeare"]["kind"] == "text"
    assert p.config["birth"]["corpus"] == "shakespeare" and p.config["models"] == {}
    assert sorted(p.birth) == sorted(schema_defaults("birth")["variants"])
    paper = {"d_model": 256, "batch_size": 512, "seq_len": 256, "n_triggers": 5}
    paper |= {"optimizer": "sgd", "lr": 0.3, "momentum": 0.9, "n_iterations": 10000}
    for name, settings in p.birth.items():
        assert {k: settings[k] for k in paper} == paper, name
    layers = {name: (s["arch"], s["n_layers"]) for name, s in p.birth.items()}
    assert layers["one_layer"] == ("full", 1) and layers["full"] == ("full", 2)
    frozen = p.birth["simplified_frozen"]
    assert frozen["freeze_embeddings"] and frozen["freeze_output"]


def test_birth_random_trigger_variant_draws_its_triggers(tmp_path):
    variants = plan("birth", tmp_path / "results").birth
    assert variants["simplified_fixed"]["fixed_triggers"] is True
    assert variants["simplified_random"]["fixed_triggers"] is False


def allowed_rules(cfg: dict) -> set[str]:
    """Rules a config may plan: the shared stages, and each study only where the config
    names what it needs (its own models and corpora, never the embedded default's)."""
    models, corpora = cfg.get("models", {}), cfg["corpora"]
    rules = {"corpus", "tokens", "extract", "geometry", "gather_metric", "manifest", "all"}
    rules |= {"figure_anisotropy"}
    if "shape_of_learning" in cfg:
        rules |= {"shape_of_learning_figure", "shape_of_learning_table"}
        rules |= {"shape_of_learning_scale_figure"}
    rules |= {"similarity", "similarity_layers_figure", "similarity_to_final_figure"}
    rules |= {"alpha_req_figure"}
    rules |= {"fingerprint", "integrity", "weights", "weights_figure"}  # checkpoint integrity
    rules |= {f"train_{m}" for m, v in models.items() if v["source"] == "train"}
    rules |= (
        {"train_tokenizer"}
        if any(t["kind"] == "train" for t in cfg.get("tokenizers", {}).values())
        else set()
    )
    rules |= {f"download_{c}" for c, v in corpora.items() if v.get("url")}
    if cfg.get("languages", {}).get("groups") or cfg.get("languages", {}).get("grammaticality"):
        rules |= {"languages_corpus", "languages_metrics", "languages_figures"}
    if "birth" in cfg and cfg["birth"].get("corpus", "python_docs") in corpora:
        rules |= {"birth_variant", "birth_figures"}
    if "logit_lens" in cfg and cfg["logit_lens"].get("models") != []:
        rules |= {"logit_lens_gather", "logit_lens_figures"}
    if "bottleneck" in cfg and cfg["bottleneck"].get("models") != []:
        rules |= {"bottleneck_saturation", "bottleneck_heads", "bottleneck_ngram"}
        rules |= {"bottleneck_figures", "bottleneck_lm_head", "bottleneck_lm_head_gather"}
    return rules


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_dry_run_from_the_repository_root(path: Path):
    """`snakemake -n --configfile config/...` from the root, where config/config.yaml (the
    embedded default) also lives: only the given config's models, corpora, steps and studies."""
    rel = path.relative_to(ROOT)
    had_results = (ROOT / "results").exists()
    res = snakemake_at_root(
        "-n", "-F", "--configfile", str(rel), env={"HF_HUB_OFFLINE": "1"}, timeout=600
    )
    assert res.returncode == 0, res.stderr[-3000:]
    cfg = load_yaml(path)
    jobs = planned_jobs(res)
    assert jobs.get("all") == 1 and sum(jobs.values()) > 5
    assert set(jobs) <= allowed_rules(cfg), set(jobs) - allowed_rules(cfg)
    corpora = expand_corpora(cfg["corpora"], missing=[])
    wildcards = planned_wildcards(res)
    assert wildcards.get("model", set()) <= set(cfg.get("models", {}))
    assert wildcards.get("corpus", set()) <= set(corpora)
    assert wildcards.get("tokenizer", set()) <= set(cfg.get("tokenizers", {}))
    steps = {s for m in cfg.get("models", {}).values() for s in model_steps(m)}
    assert wildcards.get("step", set()) <= steps
    if any(m["source"] == "hub" for m in cfg.get("models", {}).values()):
        assert "a real run stops here" in res.stderr  # not in this machine's HF cache
    if not had_results:
        assert not (ROOT / "results").exists()
