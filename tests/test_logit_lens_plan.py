"""Which models' stores compute the logit lens, from the config's logit_lens section."""

from __future__ import annotations

import pytest

from repgeom.logit_lens.plan import lens_models
from repgeom.workflow.config import load_schema, with_defaults
from tests.workflow import ROOT


def config(corpora: list[str] | None = None, **lens) -> dict:
    """A decoder and an encoder, the logit_lens and extraction sections' defaults filled in."""
    schema = load_schema(ROOT / "config" / "schema.yaml")["properties"]
    model = {"source": "train", "tokenizer": "bpe", "corpus": "docs", "config": {}}
    return {
        "corpora": {"docs": {"kind": "python_docs"}},
        "models": {
            "dec": {**model, "architecture": "gpt_neox"},
            "enc": {**model, "architecture": "bert"},
        },
        "extraction": with_defaults({"corpora": corpora}, schema["extraction"]),
        "logit_lens": with_defaults(lens, schema["logit_lens"]),
    }


def test_the_study_selects_causal_models():
    errors, skipped = [], {}
    assert lens_models(config(), errors, skipped) == ["dec"]  # null: the causal ones
    assert errors == [] and "masked LM" in skipped["enc"]
    assert lens_models(config(models=["dec"]), errors) == ["dec"]
    assert lens_models(config(models=[]), errors) == []  # the study is off
    assert lens_models(config(corpora=[]), errors) == []  # nothing extracted
    assert errors == []


@pytest.mark.parametrize(
    ("lens", "corpora", "message"),
    [
        ({"models": ["enc"]}, None, "'logit_lens.models[0]': model 'enc' is a masked LM"),
        ({"models": ["nope"]}, None, "'logit_lens.models[0]': 'nope' is not a model"),
        ({"models": ["dec"]}, [], "'logit_lens.models': no corpus is extracted"),
    ],
)
def test_errors_name_the_key(lens, corpora, message):
    errors: list[str] = []
    lens_models(config(corpora, **lens), errors)
    assert len(errors) == 1 and message in errors[0], errors


def test_schema_defaults():
    lens = config()["logit_lens"]
    assert lens["models"] is None and lens["tokens"] >= 2 and lens["seed"] == 0
