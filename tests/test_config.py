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
    text_corpus_missing,
)
from tests.workflow import snakemake

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "config" / "schema.yaml"


def load(name: str) -> dict:
    return load_yaml(ROOT / "config" / name)


@pytest.mark.parametrize("name", ["config.yaml", "test.yaml"])
def test_shipped_configs_validate(name):
    check_schema(load(name), SCHEMA)


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

    from repgeom.activations.training import TrainConfig
    from repgeom.bottleneck.heads import HeadTraining
    from repgeom.metrics import geometry
    from repgeom.workflow.config import schema_defaults

    for cls, section in ((HeadTraining, "bottleneck.heads"), (TrainConfig, "$defs.training")):
        keys = set(schema_defaults(section))
        defaulted = {
            f.name
            for f in fields(cls)
            if f.default is not MISSING or f.default_factory is not MISSING
        }
        assert keys & {f.name for f in fields(cls)}, section
        assert not defaulted & keys, (cls.__name__, defaulted & keys)
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
