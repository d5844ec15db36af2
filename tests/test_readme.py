"""The README is a short entry point: at most 150 lines, the two set-up commands first (the test
command is the one `.ci/run` calls), a config example the schema accepts and links that resolve."""

from __future__ import annotations

import re

import yaml

from repgeom.workflow.config import SCHEMA_PATH, load_config
from tests.workflow import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, flags=re.S)


def test_readme_is_short_and_starts_with_the_two_commands():
    assert len(README.splitlines()) <= 150
    (kind1, run), (kind2, test) = BLOCKS[:2]
    assert kind1 == kind2 == "bash"
    assert run.strip() == "python3 -m pip install -e . && snakemake --cores all"
    install, pytest_command = test.strip().split(" && ")
    ci = (ROOT / ".ci" / "run").read_text()
    assert install.replace("pip install", "pip install -q") in ci and pytest_command in ci


def test_the_config_example_is_a_valid_config():
    [example] = [text for kind, text in BLOCKS if kind == "yaml"]
    config = load_config(yaml.safe_load(example), SCHEMA_PATH)
    assert {"shape_of_learning", "logit_lens"} <= set(config)
    assert config["models"]["pythia"]["revisions"] == ["step0", "step1000"]


def test_every_link_resolves():
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    assert links and all((ROOT / link).exists() for link in links), [
        link for link in links if not (ROOT / link).exists()
    ]
