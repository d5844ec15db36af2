"""Hub models from an offline HF cache (two revisions) and local directories, through the workflow."""

from __future__ import annotations

import json

import pytest
import yaml
from transformers import BertConfig, BertModel

from repgeom.activations.models import build_model
from repgeom.activations.store import ActivationStore
from tests.conftest import TINY
from tests.hfcache import add_revision
from tests.workflow import planned_jobs, snakemake

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sources(tmp_path_factory, tokenizer):
    root = tmp_path_factory.mktemp("sources")
    commits = {}
    for i, rev in enumerate(("step1", "step2")):
        model = build_model("gpt_neox", TINY, tokenizer, seed=i)
        commits[rev] = add_revision(root / "hub", "tiny-org/tiny-neox", rev, model, tokenizer)
        enc = build_model("bert", TINY, tokenizer, seed=i)
        enc.save_pretrained(root / "local" / f"ckpt{i}")
    bare = BertModel(BertConfig(vocab_size=len(tokenizer), **TINY))
    bare.save_pretrained(root / "bare")
    cfg = {
        "corpora": {"docs": {"kind": "python_docs", "max_documents": 120, "eval_fraction": 0.3}},
        "tokenizers": {"hubtok": {"kind": "from_model", "model": "hub", "window": 32}},
        "models": {
            "hub": {
                "source": "hub",
                "id": "tiny-org/tiny-neox",
                "revisions": ["step1", "step2"],
                "tokenizer": "hubtok",
            },
            "mine": {"source": "local", "path": str(root / "local"), "tokenizer": "hubtok"},
            "bare": {"source": "local", "path": str(root / "bare"), "tokenizer": "hubtok"},
        },
        "extraction": {"max_tokens": 256, "device": "cpu"},
        # below the 256 tokens of a store: repeated ID subsamples differ
        "metrics": {"geometry": {"id_sample": 64}},
        "bottleneck": {"heads": {"models": []}, "ngram": {"corpora": []}},
    }
    (root / "config.yaml").write_text(yaml.safe_dump(cfg))
    return root, commits, cfg


def test_hub_and_local_models_offline(sources):
    root, commits, _ = sources
    env = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(root / "hub")}
    res = snakemake(root, root / "config.yaml", "--cores", "2", env=env)
    assert res.returncode == 0, res.stderr[-4000:]
    for rev, commit in commits.items():
        store = ActivationStore(root / "results" / "activations" / "hub" / rev / "docs.zarr")
        source = json.loads(store.attrs["model_source"])
        assert source == {
            "path": "tiny-org/tiny-neox",
            "revision": rev,
            "commit": commit,
            "objective": "auto",
        }
        assert store.attrs["eval_loss"] > 0 and store.attrs["objective"] == "causal"
    a = ActivationStore(root / "results" / "activations" / "hub" / "step1" / "docs.zarr").read(2)
    b = ActivationStore(root / "results" / "activations" / "hub" / "step2" / "docs.zarr").read(2)
    assert a.shape == b.shape and not (a == b).all()  # two revisions, two different models
    for ckpt in ("ckpt0", "ckpt1"):
        assert (root / "results" / "metrics" / "anisotropy" / "mine" / ckpt / "docs.nc").is_file()
    # each model loads as what its checkpoint is; the loss and the bottleneck study only where
    # there is a causal head, and the log says which models the study skips
    for name, kind in (("mine", "masked"), ("bare", "none")):
        step = "ckpt0" if name == "mine" else "final"
        store = ActivationStore(root / "results" / "activations" / name / step / "docs.zarr")
        assert store.attrs["objective"] == kind and "eval_loss" not in store.attrs
    studied = sorted(p.stem for p in (root / "results" / "metrics" / "eval_loss").glob("*.nc"))
    assert studied == ["hub"]
    for name, why in (("mine", "masked LM"), ("bare", "bare model")):
        assert f"skips model {name!r}: a {why}" in res.stderr


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"bottleneck": {"models": ["bare"]}}, "'bottleneck.models[0]': model 'bare' is a bare"),
        ({"extraction": {"eval_loss": True}}, "model 'mine' has no causal LM head"),
        (
            {"models": {"bare": {"source": "local", "architecture": "bert"}}},
            "'models.bare.architecture': only for models the workflow trains",
        ),
    ],
)
def test_studies_needing_a_causal_head_refuse_other_models(sources, tmp_path, edit, message):
    root, _, cfg = sources
    cfg = json.loads(json.dumps(cfg))
    for section, values in edit.items():
        for key, value in values.items():
            if isinstance(value, dict) and key in cfg[section]:
                cfg[section][key].update(value)
            else:
                cfg[section][key] = value
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(root / "hub")}
    res = snakemake(tmp_path, path, "-n", env=env)
    assert res.returncode != 0 and message in res.stdout + res.stderr
    assert not (tmp_path / "results").exists()


def test_missing_revision_stops_before_any_job(sources, tmp_path):
    root, _, cfg = sources
    cfg = json.loads(json.dumps(cfg))
    cfg["models"]["hub"]["revisions"] = ["step1", "step999"]
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(root / "hub")}
    res = snakemake(tmp_path, path, "--cores", "1", env=env)
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "models.hub.revisions" in out and "step999" in out and "hf download" in out
    assert not (tmp_path / "results").exists()
    dry = snakemake(tmp_path, path, "-n", env=env)  # a dry run lists the jobs and warns
    assert dry.returncode == 0 and "a real run stops here" in dry.stderr


def test_release_revision_frees_only_that_revision(sources, tmp_path, monkeypatch):
    import shutil

    import huggingface_hub.constants

    from repgeom.workflow.locate import hub_weights_cached, release_revision

    root, commits, _ = sources
    shutil.copytree(root / "hub", tmp_path / "hub")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    repo = "tiny-org/tiny-neox"
    assert hub_weights_cached(repo, "step1") and hub_weights_cached(repo, "step2")
    freed = release_revision(repo, commits["step1"])
    weights = tmp_path / "hub" / "models--tiny-org--tiny-neox" / "snapshots" / commits["step2"]
    assert freed >= (weights / "model.safetensors").stat().st_size
    assert not hub_weights_cached(repo, "step1") and hub_weights_cached(repo, "step2")
    assert release_revision(repo, commits["step1"]) == 0  # already gone: nothing to do


def test_temporary_stores_and_released_revisions(sources, tmp_path):
    """disk options: activation stores are removed once read, each hub revision gets its release
    record (kept here: the test put it in the cache), and a rerun has nothing to do, even
    offline after the revision left the cache."""
    import shutil

    root, commits, cfg = sources
    cfg = json.loads(json.dumps(cfg))
    cfg["disk"] = {"temporary_activations": True, "release_hub_revisions": True}
    del cfg["models"]["mine"], cfg["models"]["bare"]
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    shutil.copytree(root / "hub", tmp_path / "hub")
    env = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub")}
    res = snakemake(tmp_path, tmp_path / "c.yaml", "--cores", "2", env=env)
    assert res.returncode == 0, res.stderr[-4000:]
    results = tmp_path / "results"
    assert not list((results / "activations").glob("*/*/*.zarr"))  # temp(): removed
    assert (results / "metrics" / "anisotropy" / "hub.nc").is_file()
    for rev, commit in commits.items():
        record = json.loads((results / "hub" / "hub" / f"{rev}.json").read_text())
        assert record["commit"] == commit and record["downloaded"] is False
        assert record["freed_bytes"] == 0 and record["action"].startswith("kept")
    again = snakemake(tmp_path, tmp_path / "c.yaml", "-n", env=env)
    assert again.returncode == 0 and planned_jobs(again) == {}, again.stdout[-3000:]
    shutil.rmtree(tmp_path / "hub")  # the revisions left the cache: the records stand in
    offline = snakemake(tmp_path, tmp_path / "c.yaml", "-n", env=env)
    assert offline.returncode == 0 and planned_jobs(offline) == {}, offline.stderr[-3000:]
