"""Config validation: schema errors and cross-references name the key."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from repgeom.workflow.config import (
    ConfigError,
    check_references,
    check_schema,
    load_config,
    load_config_file,
    load_yaml,
    matching_files,
    options,
    schema_defaults,
    text_corpus_missing,
)
from tests.workflow import snakemake

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "config" / "schema.yaml"


def load(name: str) -> dict:
    return load_yaml(ROOT / "config" / name)


def assert_kept(written, loaded, key: str = "") -> None:
    """Every value a config file writes is in the loaded config, at the same key."""
    if isinstance(written, dict):
        assert isinstance(loaded, dict), key
        for k, v in written.items():
            sub = f"{key}.{k}" if key else k
            assert k in loaded, f"{sub} is lost"
            assert_kept(v, loaded[k], sub)
    elif isinstance(written, list) and any(isinstance(v, dict) for v in written):
        assert isinstance(loaded, list) and len(loaded) == len(written), key
        for i, (w, v) in enumerate(zip(written, loaded, strict=True)):
            assert_kept(w, v, f"{key}[{i}]")
    else:
        assert loaded == written and type(loaded) is type(written), key


# (config key the file is silent on, schema section whose default fills it: the key's last part,
# or the whole section where the key is the section)
SILENT = {
    "config.yaml": [
        ("disk", "disk"),
        ("extraction.eval_loss", "extraction"),
        ("metrics.geometry.twonn_discard", "metrics.geometry"),
        ("metrics.geometry.mle_k", "metrics.geometry"),
        ("models.decoder.training.weight_decay", "$defs.training"),
        ("tokenizers.bpe.min_frequency", "$defs.tokenizer"),
        ("bottleneck.heads.schedule", "bottleneck.heads"),
        ("bottleneck.ngram.method", "bottleneck.ngram"),
        ("birth.variants", "birth"),
    ],
    "test.yaml": [
        ("disk", "disk"),
        ("extraction.corpora", "extraction"),
        ("extraction.split", "extraction"),
        ("metrics.geometry.positions", "metrics.geometry"),
        ("models.decoder.training.mask_prob", "$defs.training"),
        ("tokenizers.bpe.bos", "$defs.tokenizer"),
        ("corpora.random.seed", "$defs.corpus"),
        ("languages.steps", "languages"),
        ("languages.id_estimator", "languages"),
        ("logit_lens.models", "logit_lens"),
        ("bottleneck.heads.weight_decay", "bottleneck.heads"),
        ("bottleneck.ngram.n", "bottleneck.ngram"),
    ],
}


def at(config: dict, key: str):
    """The value at a dotted key, or KeyError."""
    for part in key.split("."):
        config = config[part]
    return config


@pytest.mark.parametrize("name", ["config.yaml", "test.yaml"])
def test_shipped_configs_load_with_their_values_and_the_schema_defaults(name):
    """Loading keeps every value the file writes (read here with plain PyYAML) and fills what it
    is silent on with the schema's default."""
    path = ROOT / "config" / name
    written = yaml.safe_load(path.read_text())
    loaded = load_config(load_config_file(path), SCHEMA)
    assert_kept(written, loaded)
    for key, section in SILENT[name]:
        with pytest.raises(KeyError):
            at(written, key)  # the file really is silent on it
        filled = schema_defaults(section)
        expected = filled if key == section else filled[key.rpartition(".")[2]]
        assert at(loaded, key) == expected, key
    # every top-level section of the schema, written or not
    assert set(loaded) == set(load_yaml(SCHEMA)["properties"])
    # a few defaults spelled out, so that a schema_defaults that found nothing cannot pass
    assert loaded["disk"] == {"temporary_activations": False, "release_hub_revisions": False}
    assert loaded["models"]["decoder"]["training"]["grad_clip"] == 1.0
    assert loaded["metrics"]["geometry"]["power_max_iter"] == 1000
    # keys sorted: the order the file writes them in never changes a job's params
    assert list(written["corpora"]) != sorted(written["corpora"])
    assert list(loaded["corpora"]) == sorted(written["corpora"])


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda c: c["corpora"]["docs"].update(bogus=1), "corpora.docs': unknown key(s) 'bogus'"),
        (
            lambda c: c["models"]["decoder"]["training"].update(lr="fast"),
            "models.decoder.training.lr",
        ),
        (
            lambda c: c["models"]["decoder"].pop("tokenizer"),
            "models.decoder': 'tokenizer' is a required",
        ),
        (lambda c: c.update(extra_section={}), "unknown key(s) 'extra_section'"),
        (lambda c: c["corpora"]["docs"].update(eval_fraction=1.5), "corpora.docs.eval_fraction"),
    ],
)
def test_schema_errors_name_the_key(edit, expected):
    cfg = copy.deepcopy(load("test.yaml"))
    edit(cfg)
    with pytest.raises(ConfigError) as err:
        check_schema(cfg, SCHEMA)
    assert expected in str(err.value)


def test_references_name_the_key():
    from snakemake.utils import validate

    cfg = copy.deepcopy(load("test.yaml"))
    cfg["models"]["decoder"]["tokenizer"] = "nope"
    cfg["tokenizers"]["bpe"]["corpus"] = "random"
    validate(cfg, str(SCHEMA), set_default=True)
    with pytest.raises(ConfigError) as err:
        check_references(cfg)
    assert "models.decoder.tokenizer': 'nope' is not defined" in str(err.value)
    assert "tokenizers.bpe.corpus': 'random' cannot be used here" in str(err.value)


def test_snakemake_stops_before_any_job(tmp_path):
    cfg = copy.deepcopy(load("test.yaml"))
    cfg["corpora"]["docs"]["windoes"] = "stream"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = snakemake(tmp_path, path, "-n")
    assert res.returncode != 0
    assert "corpora.docs': unknown key(s) 'windoes'" in res.stderr + res.stdout
    assert not (tmp_path / "results").exists()


def test_missing_text_corpus_stops_with_path(tmp_path):
    cfg = copy.deepcopy(load("test.yaml"))
    cfg["corpora"]["enwik8"] = {"kind": "text", "path": str(tmp_path / "enwik8.zip")}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = snakemake(tmp_path, path, "--cores", "1")
    out = res.stderr + res.stdout
    assert res.returncode != 0
    assert "corpora.enwik8.path" in out and "enwik8.zip" in out


def test_library_defaults_live_in_the_schema():
    """No library default of a configurable value can drift from the schema: the classes that
    take a config section have none, the geometry options come from the schema."""
    from dataclasses import MISSING, fields

    from repgeom.activations.lens import LensSample
    from repgeom.activations.options import ExtractionOptions
    from repgeom.activations.training import TrainConfig
    from repgeom.bottleneck.options import HeadTraining, NgramOptions
    from repgeom.languages.datasets import LanguagesOptions
    from repgeom.metrics import geometry
    from repgeom.workflow.config import schema_defaults

    for cls, section in (
        (HeadTraining, "bottleneck.heads"),
        (NgramOptions, "bottleneck.ngram"),
        (ExtractionOptions, "extraction"),
        (LanguagesOptions, "languages"),
        (LensSample, "logit_lens"),
        (TrainConfig, "$defs.training"),
    ):
        keys = set(schema_defaults(section))
        defaulted = {
            f.name
            for f in fields(cls)
            if f.default is not MISSING or f.default_factory is not MISSING
        }
        assert keys & {f.name for f in fields(cls)}, section
        assert not defaulted & keys, (cls.__name__, defaulted & keys)
        options(cls, section, {})  # the schema's defaults make a whole options object
    assert not hasattr(geometry, "DEFAULTS")
    heads = options(HeadTraining, "bottleneck.heads", {"token_budget": 5})
    assert heads.batch_size == schema_defaults("bottleneck.heads")["batch_size"]
    assert (
        options(TrainConfig, "$defs.training", {}).warmup
        == schema_defaults("$defs.training")["warmup"]
    )


def test_text_corpus_encoding_is_a_known_text_codec():
    cfg = copy.deepcopy(load("test.yaml"))
    cfg["corpora"]["notes"] = {"kind": "text", "path": "notes.txt"}
    notes = load_config(cfg, SCHEMA)["corpora"]["notes"]
    assert (notes["encoding"], notes["errors"]) == ("utf-8", "strict")  # the schema's defaults
    for codec in ("latin-1", "cp1252", "utf-16"):
        cfg["corpora"]["notes"]["encoding"] = codec
        assert load_config(cfg, SCHEMA)["corpora"]["notes"]["encoding"] == codec
    for codec, why in (("no-such-codec", "unknown encoding"), ("base64", "not a text encoding")):
        cfg["corpora"]["notes"]["encoding"] = codec
        with pytest.raises(ConfigError, match=f"corpora.notes.encoding': .*{why}"):
            load_config(cfg, SCHEMA)
    cfg["corpora"]["notes"] = {"kind": "text", "path": "notes.txt", "errors": "ignore"}
    with pytest.raises(ConfigError, match="corpora.notes.errors"):
        load_config(cfg, SCHEMA)
    cfg["corpora"]["notes"] = {"kind": "minimal_pairs", "path": "p.csv", "encoding": "latin-1"}
    with pytest.raises(ConfigError, match="corpora.notes.encoding': only text corpora"):
        load_config(cfg, SCHEMA)


def test_a_glob_matching_no_file_names_the_key_and_pattern(tmp_path):
    (tmp_path / "folder.txt").mkdir()
    for pattern in (tmp_path / "*.none", tmp_path / "*.txt"):  # nothing; a folder only
        message = text_corpus_missing("notes", {"kind": "text", "path": str(pattern)})
        assert f"config key 'corpora.notes.path': no file matches '{pattern}'" in message
    (tmp_path / "a.txt").write_text("text")
    assert text_corpus_missing("notes", {"kind": "text", "path": str(tmp_path / "*.txt")}) is None
    assert matching_files(str(tmp_path / "*.txt")) == [tmp_path / "a.txt"]


SHIPPED_YAML = sorted([*ROOT.glob("config/**/*.yaml"), *ROOT.glob("profiles/*/*.yaml")])


@pytest.mark.parametrize("path", SHIPPED_YAML, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_configs_schemas_and_profiles_say_each_key_once(path):
    assert load_yaml(path) == yaml.safe_load(path.read_text())


def test_a_key_given_twice_names_the_key_the_file_and_the_line(tmp_path):
    path = tmp_path / "dup.yaml"
    merged = "base: &base {lr: 0.1, steps: 10}\nmodels:\n  a:\n    <<: *base\n    lr: 0.2\n"
    path.write_text(merged)
    assert load_yaml(path)["models"]["a"] == {"lr": 0.2, "steps": 10}  # a merge may override
    path.write_text(merged + "  b: {lr: 0.3}\n  a: {lr: 0.4}\n")
    where = f"{path}, line 7: config key 'a' is given twice in one mapping (first at line 3)"
    for load in (load_yaml, load_config_file):
        with pytest.raises(ConfigError, match=re.escape(where)):
            load(path)
    path.write_text("corpora:\n  docs:\n    - {kind: python_docs, kind: text}\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}, line 3: config key 'kind'")):
        load_yaml(path)
    path = tmp_path / "dup.json"
    path.write_text('{"corpora": {"docs": {"kind": "python_docs"}, "docs": {"kind": "text"}}}')
    with pytest.raises(ConfigError, match=re.escape(f"{path}: config key 'docs' is given twice")):
        load_config_file(path)


def test_a_model_named_twice_stops_the_run_before_any_job(tmp_path):
    text = (ROOT / "config" / "test.yaml").read_text()
    lines = text.splitlines()
    first, second = lines.index("  decoder:") + 1, lines.index("  encoder:") + 1
    path = tmp_path / "dup.yaml"
    path.write_text(text.replace("  encoder:\n", "  decoder:\n"))
    res = snakemake(tmp_path, path, "-n")
    out = res.stderr + res.stdout
    assert res.returncode != 0
    assert (
        f"repgeom: {path}, line {second}: config key 'decoder' is given twice in one mapping "
        f"(first at line {first})"
    ) in out
    assert "Job stats" not in out and not (tmp_path / "results").exists()
