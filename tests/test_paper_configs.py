"""Every paper config plans what its paper needs (models, checkpoints, corpora, studies), and it
(and the test config) plans offline from the repository root exactly as the README shows, with
nothing of the embedded default mixed in."""

from __future__ import annotations

from pathlib import Path

import pytest

from repgeom.languages.estimates import ID_OPTIONS, id_estimator
from repgeom.workflow.config import load_config_file, load_yaml, schema_defaults
from repgeom.workflow.paths import Paths
from repgeom.workflow.plan import model_checkpoints
from repgeom.workflow.run import RunPlan, plan_run
from tests.workflow import ROOT, planned_jobs, planned_wildcards, snakemake_at_root

PAPERS = sorted((ROOT / "config" / "paper").glob("*.yaml"))
CONFIGS = [*PAPERS, ROOT / "config" / "test.yaml"]


def plan(name: str, results: Path) -> RunPlan:
    """What the workflow plans from config/paper/NAME.yaml, offline: the run's one plan (data
    and models that are not here change nothing in it)."""
    return plan_run(
        load_config_file(ROOT / "config" / "paper" / f"{name}.yaml"), Paths(str(results))
    )


def studies(p: RunPlan) -> set[str]:
    """The studies a plan runs (geometry: the core metrics of at least one store)."""
    found = {name for name, study in p.studies.items() if study.targets}
    return found | ({"geometry"} if p.extract_corpora and p.geometry_models else set())


PAPER_STUDIES = {
    "shape_of_learning": {"geometry", "shape_of_learning"},
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
    assert list(p.extract_corpora) == ["enwik8", "random"]
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
    bn = p.studies["bottleneck"]
    assert sorted(bn["models"]) == sorted(models) and bn["skipped"] == {}
    assert list(p.extract_corpora) == bn["eval_corpora"] == ["enwik8"]
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
    assert sorted(p.studies["languages"]["checkpoints"]) == sorted((m, "main") for m in ids)
    [flores] = p.studies["languages"]["groups"]
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
    [blimp] = p.studies["languages"]["pairs"]
    assert (blimp["origin"], blimp["corpora"]) == ("minimal_pairs", ["blimp-good", "blimp-bad"])
    # scikit-dimension's TwoNN (discard 0.1, least squares) on sentences; no spine extraction
    section = p.config["languages"]
    name = id_estimator(section["id_estimator"])
    assert (name, ID_OPTIONS.twonn_discard, ID_OPTIONS.twonn_fit) == ("twonn", 0.1, "lsq")
    assert list(p.extract_corpora) == []


def test_birth_plans_the_five_variants_at_the_papers_scale(tmp_path):
    p = plan("birth", tmp_path / "results")
    assert p.config["corpora"]["shakespeare"]["kind"] == "text"
    assert p.config["birth"]["corpus"] == "shakespeare" and p.config["models"] == {}
    assert sorted(p.studies["birth"]["variants"]) == sorted(schema_defaults("birth")["variants"])
    paper = {"d_model": 256, "batch_size": 512, "seq_len": 256, "n_triggers": 5}
    paper |= {"optimizer": "sgd", "lr": 0.3, "momentum": 0.9, "n_iterations": 10000}
    for name, settings in p.studies["birth"]["variants"].items():
        assert {k: settings[k] for k in paper} == paper, name
    layers = {
        name: (s["arch"], s["n_layers"]) for name, s in p.studies["birth"]["variants"].items()
    }
    assert layers["one_layer"] == ("full", 1) and layers["full"] == ("full", 2)
    frozen = p.studies["birth"]["variants"]["simplified_frozen"]
    assert frozen["freeze_embeddings"] and frozen["freeze_output"]


def test_birth_random_trigger_variant_draws_its_triggers(tmp_path):
    variants = plan("birth", tmp_path / "results").studies["birth"]["variants"]
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
    rules |= {"alpha_req_figure", "origins_figures"}
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
    run = plan_run(load_config_file(path))
    wildcards = planned_wildcards(res)
    assert wildcards.get("model", set()) <= set(cfg.get("models", {}))
    assert wildcards.get("corpus", set()) <= set(run.config["corpora"])
    assert wildcards.get("tokenizer", set()) <= set(cfg.get("tokenizers", {}))
    steps = {s for labels in run.steps.values() for s in labels}
    assert wildcards.get("step", set()) <= steps
    if any(m["source"] == "hub" for m in cfg.get("models", {}).values()):
        assert "a real run stops here" in res.stderr  # not in this machine's HF cache
    if not had_results:
        assert not (ROOT / "results").exists()
