"""Every paper config (and the test config) validates and plans offline from the repository
root exactly as the README shows, with nothing of the embedded default mixed in."""

from __future__ import annotations

from pathlib import Path

import pytest

from repgeom.languages.corpora import expand_corpora
from repgeom.workflow.config import check_schema, load_yaml
from repgeom.workflow.plan import model_steps
from tests.workflow import ROOT, planned_jobs, planned_wildcards, snakemake_at_root

PAPERS = sorted((ROOT / "config" / "paper").glob("*.yaml"))
CONFIGS = [*PAPERS, ROOT / "config" / "test.yaml"]


@pytest.mark.parametrize("path", PAPERS, ids=lambda p: p.stem)
def test_paper_config_validates(path: Path):
    check_schema(load_yaml(path), ROOT / "config" / "schema.yaml")


def allowed_rules(cfg: dict) -> set[str]:
    """Rules a config may plan: the shared stages, and each study only where the config
    names what it needs (its own models and corpora, never the embedded default's)."""
    models, corpora = cfg.get("models", {}), cfg["corpora"]
    rules = {"corpus", "tokens", "extract", "geometry", "gather_metric", "manifest", "all"}
    rules |= {"figure_anisotropy", "shape_of_learning_figure", "shape_of_learning_table"}
    rules |= {"shape_of_learning_scale_figure"}
    rules |= {"similarity", "similarity_layers_figure", "similarity_to_final_figure"}
    rules |= {f"train_{m}" for m, v in models.items() if v["source"] == "train"}
    rules |= (
        {"train_tokenizer"}
        if any(t["kind"] == "train" for t in cfg.get("tokenizers", {}).values())
        else set()
    )
    rules |= {f"download_{c}" for c, v in corpora.items() if v.get("url")}
    if cfg.get("languages", {}).get("groups") or cfg.get("languages", {}).get("grammaticality"):
        rules |= {"languages_corpus", "languages_metrics", "languages_figures"}
    if cfg.get("birth", {}).get("corpus", "python_docs") in corpora:
        rules |= {"birth_variant", "birth_figures"}
    if cfg.get("logit_lens", {}).get("models") != []:
        rules |= {"logit_lens_gather", "logit_lens_figures"}
    if cfg.get("bottleneck", {}).get("models") != []:
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
