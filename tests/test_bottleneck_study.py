"""The study's datasets against brute force, and its plan from the config (names, memory)."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import xarray as xr

from repgeom.bottleneck.datasets import (
    cosine_dataset,
    eval_loss_dataset,
    last_layer_cosine,
    stack_steps,
)
from repgeom.bottleneck.memory import COUNT_BYTES_PER_GRAM
from repgeom.bottleneck.plan import study_plan
from repgeom.bottleneck.plots import best_vs_final_rows, werror_threshold_table
from repgeom.workflow.config import ConfigError, load_schema, with_defaults
from repgeom.workflow.paths import Paths
from tests.workflow import ROOT

STEPS = ["step0", "step4", "step8"]


class FakeStore:
    """The part of ActivationStore that last_layer_cosine reads."""

    def __init__(self, layers: dict[int, np.ndarray]) -> None:
        self.data = layers
        self.layers = sorted(layers)
        self.hidden_size = next(iter(layers.values())).shape[1]

    def iter_blocks(self, layer, rows=None, block=65536):
        x = self.data[layer]
        for s in range(0, len(x), block):
            yield x[s : s + block]


def test_last_layer_cosine_is_the_mean_over_pairs():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 5)) + 1.5
    store = FakeStore({0: rng.standard_normal((30, 5)), 3: x})
    value, layer, n = last_layer_cosine(store, block=7)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    cos = u @ u.T
    ref = (cos.sum() - np.trace(cos)) / (30 * 29)
    assert layer == 3 and n == 30
    assert value == pytest.approx(ref, rel=1e-12)


def test_eval_loss_dataset_and_best_vs_final():
    attrs = {
        ("step0", "docs"): {"eval_loss": 6.0, "eval_loss_tokens": 90, "objective": "causal"},
        ("step4", "docs"): {"eval_loss": 4.0, "eval_loss_tokens": 90, "objective": "causal"},
        ("step8", "docs"): {"eval_loss": 4.5, "eval_loss_tokens": 90, "objective": "causal"},
    }
    for s in STEPS:
        attrs[(s, "masked")] = {"objective": "masked"}
    ds = eval_loss_dataset(attrs, STEPS, ["docs", "masked"], {"model": "m"})
    assert ds.eval_loss.dims == ("step", "corpus")
    np.testing.assert_array_equal(ds.eval_loss.sel(corpus="docs"), [6.0, 4.0, 4.5])
    assert np.isnan(ds.eval_loss.sel(corpus="masked")).all()
    assert (ds.eval_loss_tokens.sel(corpus="masked") == 0).all()
    assert len(json.loads(ds.attrs["missing_eval_loss"])) == 3
    np.testing.assert_array_equal(ds.step_number, [0, 4, 8])
    assert ds.eval_loss.attrs["units"] == "nat/token"
    row = best_vs_final_rows({"m": ds.eval_loss.sel(corpus="docs", drop=True)})[0]
    assert (row["best_step"], row["final_step"], row["final_minus_best"]) == ("step4", "step8", 0.5)
    with pytest.raises(KeyError, match="step8"):
        eval_loss_dataset({k: v for k, v in attrs.items() if k[0] != "step8"}, STEPS, ["docs"])
    bad = copy.deepcopy(attrs)
    bad[("step0", "docs")]["eval_loss"] = float("nan")
    with pytest.raises(ValueError, match="step0/docs"):
        eval_loss_dataset(bad, STEPS, ["docs"])


def test_cosine_dataset_and_stack_steps():
    values = {
        (s, c): (0.1 * i + j, 2, 100) for i, s in enumerate(STEPS) for j, c in enumerate("ab")
    }
    ds = cosine_dataset(values, STEPS, ["a", "b"])
    assert ds.mean_cosine.dims == ("step", "corpus")
    assert ds.mean_cosine.sel(step="step8", corpus="b") == pytest.approx(1.2)
    parts = [
        xr.Dataset({"v": ("index", np.arange(3) * i)}, coords={"index": [1, 2, 3]})
        for i in range(3)
    ]
    stacked = stack_steps(parts, STEPS)
    assert stacked.v.dims == ("step", "index")
    np.testing.assert_array_equal(stacked.step_number, [0, 4, 8])
    with pytest.raises(ValueError, match="one dataset per step"):
        stack_steps(parts[:2], STEPS)


def test_threshold_table():
    csv, tex = werror_threshold_table({("bpe", "docs"): {0.5: 3, 0.1: "> 32"}})
    assert csv.splitlines() == [
        "tokenizer,corpus,d_werror_below_0.5,d_werror_below_0.1",
        "bpe,docs,3,> 32",
    ]
    assert r"$>$ 32" in tex and r"\toprule" in tex


# --- plan ----------------------------------------------------------------------------------


def config(**bottleneck) -> dict:
    """A config with a decoder and an encoder, the bottleneck section's defaults filled in."""
    schema = load_schema(ROOT / "config" / "schema.yaml")["properties"]["bottleneck"]
    model = {
        "source": "train",
        "tokenizer": "bpe",
        "corpus": "docs",
        "config": {"hidden_size": 32},
        "training": {},
    }
    return {
        "corpora": {"docs": {"kind": "python_docs"}, "random": {"kind": "random_tokens"}},
        "tokenizers": {"bpe": {"kind": "train", "vocab_size": 512, "window": 32}},
        "models": {
            "dec": {**model, "architecture": "gpt_neox"},
            "enc": {**model, "architecture": "bert"},
        },
        "bottleneck": with_defaults(bottleneck, schema),
    }


def plan(cfg, tmp_path, corpora=("docs", "random")):
    steps = {"dec": STEPS, "enc": ["step0", "step8"]}
    return study_plan(cfg, steps, list(corpora), Paths(str(tmp_path)))


def test_default_plan(tmp_path):
    p = plan(config(), tmp_path)
    assert p["models"] == ["dec"]  # the masked LM is left out
    assert p["eval_corpora"] == ["docs"]  # random tokens are not a text corpus
    assert p["heads"] == [("dec", "step8")] and p["heads_corpus"] == "docs"
    assert p["ngram"] == [("bpe", "docs")]
    assert p["heads_mem_mb"]["dec"] >= 2000
    p = plan(config(heads={"steps": ["step0", "step8"]}, ngram={"corpora": []}), tmp_path)
    assert p["heads"] == [("dec", "step0"), ("dec", "step8")] and p["ngram"] == []
    assert plan(config(heads={"steps": "all"}), tmp_path)["heads"] == [("dec", s) for s in STEPS]
    assert plan(config(heads={"models": []}), tmp_path)["heads"] == []


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"models": ["enc"]}, "'bottleneck.models[0]': model 'enc' is a masked LM"),
        ({"models": ["nope"]}, "'bottleneck.models[0]': 'nope' is not a model"),
        ({"eval_corpora": ["other"]}, "'bottleneck.eval_corpora[0]': 'other' is not extracted"),
        ({"heads": {"steps": ["step3"]}}, "'bottleneck.heads.steps': ['step3']"),
        ({"heads": {"corpus": "other"}}, "'bottleneck.heads.corpus': 'other'"),
        (
            {"heads": {"ranks": [4, 64]}},
            "'bottleneck.heads.ranks': [64] are not in [1, min(V, d)] = [1, 32]",
        ),
        ({"heads": {"models": ["enc"]}}, "'bottleneck.heads.models[0]'"),
        ({"ngram": {"tokenizers": ["x"]}}, "'bottleneck.ngram.tokenizers[0]': 'x'"),
        ({"ngram": {"corpora": ["x"]}}, "'bottleneck.ngram.corpora[0]': 'x'"),
        ({"ngram": {"n": 40}}, "'bottleneck.ngram.n': 40-grams do not fit"),
    ],
)
def test_bad_names_stop_with_the_key(tmp_path, section, message):
    with pytest.raises(ConfigError) as err:
        plan(config(**section), tmp_path)
    assert message in str(err.value)


def test_memory_refused_at_parse_time(tmp_path):
    # logits of 10⁷ rows × V=512 float32, four copies: ~76 GiB
    with pytest.raises(ConfigError, match="bottleneck.heads.*lower batch_size"):
        plan(config(heads={"batch_size": 10**7}), tmp_path)
    with pytest.raises(ConfigError, match=r"bottleneck.heads.*only 1.0 MiB are allowed"):
        plan(config(heads={"memory_mb": 1}), tmp_path)
    # n-gram counting: known from max_tokens before the tokens exist
    n_grams = (2**20 // 32) * (32 - 4)
    need_mb = math.ceil(COUNT_BYTES_PER_GRAM * n_grams / 2**20)
    plan(config(ngram={"max_tokens": 2**20, "memory_mb": need_mb + 1}), tmp_path)
    with pytest.raises(ConfigError, match="counting .* n-grams.*bottleneck.ngram.max_tokens"):
        plan(config(ngram={"max_tokens": 2**20, "memory_mb": need_mb - 1}), tmp_path)
    # unknown sizes (no token store, no max_tokens): left to the job
    plan(config(ngram={"memory_mb": 1}), tmp_path)


def test_eval_loss_must_be_extracted(tmp_path):
    cfg = {**config(), "extraction": {"eval_loss": False}}
    with pytest.raises(ConfigError, match="'extraction.eval_loss'"):
        plan(cfg, tmp_path)
    plan({**config(models=[]), "extraction": {"eval_loss": False}}, tmp_path)
    plan({**config(), "extraction": {"eval_loss": None}}, tmp_path)


def test_eval_loss_where_a_study_reads_it():
    """null: the bottleneck study's models on its eval corpora; true: every store of every
    model, a model without a causal head being an error; false: none; a config whose
    bottleneck study is off pays for none."""
    from repgeom.workflow.plan import eval_loss_models

    cfg = config()
    study = {"dec": ["docs"]}
    for asked, expected in (
        (None, {"dec": ["docs"], "enc": []}),
        (False, {"dec": [], "enc": []}),
    ):
        cfg["extraction"] = {"eval_loss": asked}
        assert eval_loss_models(cfg, study) == (expected, [])
    cfg["extraction"] = {"eval_loss": None}
    assert eval_loss_models(cfg, {}) == ({"dec": [], "enc": []}, [])
    cfg["extraction"] = {"eval_loss": True}
    wanted, errors = eval_loss_models(cfg, study)
    assert wanted["dec"] == ["docs", "random"]
    assert len(errors) == 1 and "model 'enc' has no causal LM head" in errors[0]
    del cfg["models"]["enc"]
    assert eval_loss_models(cfg, study) == ({"dec": ["docs", "random"]}, [])


def test_format_bytes():
    from repgeom.runtime import format_bytes

    assert format_bytes(3 * 2**30) == "3.00 GiB"
    assert format_bytes(1.5 * 2**20) == "1.5 MiB"
    assert format_bytes(2048) == "2 KiB"


def test_hub_and_local_models_by_their_cached_config(tmp_path, monkeypatch):
    """A hub or local model is what its config.json says; unknown (not cached) is kept."""
    import huggingface_hub.constants

    from tests.hfcache import add_config

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    cfg = config()
    hub = {"source": "hub", "tokenizer": "bpe", "revisions": ["main"]}
    for name, arch in (
        ("enc", "BertForMaskedLM"),
        ("dec", "GPT2LMHeadModel"),
        ("bare", "BertModel"),
    ):
        add_config(tmp_path / "hub", f"nobody/{name}", "main", {"architectures": [arch]})
        cfg["models"][f"hub-{name}"] = {**hub, "id": f"nobody/{name}"}
    cfg["models"]["hub-unknown"] = {**hub, "id": "nobody/unknown"}
    local = tmp_path / "local"
    local.mkdir()
    (local / "config.json").write_text(json.dumps({"architectures": ["RobertaForMaskedLM"]}))
    cfg["models"]["local-enc"] = {"source": "local", "tokenizer": "bpe", "path": str(local)}
    steps = {"dec": STEPS, "enc": STEPS, "local-enc": ["final"]}
    steps.update({f"hub-{n}": ["main"] for n in ("enc", "dec", "bare", "unknown")})
    p = study_plan(cfg, steps, ["docs"], Paths(str(tmp_path)))
    assert p["models"] == ["dec", "hub-dec", "hub-unknown"]
    assert set(p["skipped"]) == {"enc", "hub-enc", "hub-bare", "local-enc"}
    assert "no LM head" in p["skipped"]["hub-bare"] and "masked" in p["skipped"]["enc"]
    cfg["bottleneck"]["models"] = ["hub-bare"]
    with pytest.raises(ConfigError, match="model 'hub-bare' is a bare model"):
        study_plan(cfg, steps, ["docs"], Paths(str(tmp_path)))
    cfg["bottleneck"]["models"] = None
    cfg["models"]["hub-cls"] = {**hub, "id": "nobody/cls"}
    add_config(
        tmp_path / "hub", "nobody/cls", "main", {"architectures": ["BertForQuestionAnswering"]}
    )
    steps["hub-cls"] = ["main"]
    with pytest.raises(ConfigError, match="models.hub-cls.*objective: none"):
        study_plan(cfg, steps, ["docs"], Paths(str(tmp_path)))
    cfg["models"]["hub-cls"]["objective"] = "none"
    assert "hub-cls" in study_plan(cfg, steps, ["docs"], Paths(str(tmp_path)))["skipped"]
