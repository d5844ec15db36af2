"""A study is a package of the protocol's shape, one registry line and its rules file: a study
registered as an entry point, outside this repository, is planned and run through the core (its
section checked by its own schema, the pass it asks of extraction computed, its target built)
with no core file naming it."""

from __future__ import annotations

import json
import textwrap

import yaml

from repgeom.workflow.config import ConfigError
from repgeom.workflow.paths import Paths
from repgeom.workflow.run import plan_run
from repgeom.workflow.studies import BUILTIN, ENTRY_POINTS, registry
from tests.test_studies_named import one_model_config
from tests.workflow import snakemake

PLAN = '''
"""A study that counts the eval-loss tokens of every store of its models."""
from pathlib import Path

from repgeom.workflow.config import ConfigError
from repgeom.workflow.studies import StudyPlan

RULES = Path(__file__).with_name("rules.smk")
SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "description": "the counting study",
    "properties": {
        "label": {"type": "string", "default": "counted", "description": "written in its output"}
    },
}


def plan(section, run, paths):
    if section is None:
        return StudyPlan(params={"stores": []})
    if section["label"] == "refuse":
        raise ConfigError("config key 'counting.label': refused by the counting study")
    stores = [(m, s, c) for m, steps in run.steps.items() for s in steps for c in run.extract_corpora]
    return StudyPlan(
        targets=tuple(paths.results(f"counting/{m}/{s}/{c}.json") for m, s, c in stores),
        passes={(m, c): {"eval_loss": True} for m, _, c in stores},
        params={"stores": stores, "label": section["label"]},
    )
'''

RULES = """
COUNTING = RUN.studies["counting"]


rule counting_store:
    input:
        lambda w: PATHS.activations(w.model, w.step, w.corpus),
    output:
        PATHS.results("counting/{model}/{step}/{corpus}.json"),
    params:
        label=COUNTING["label"] if COUNTING["stores"] else None,
    run:
        import json
        import zarr

        attrs = dict(zarr.open_group(input[0], mode="r").attrs)
        record = {"label": params.label, "tokens": attrs.get("eval_loss_tokens", 0)}
        with open(output[0], "w") as f:
            json.dump(record, f)


rule counting:
    input:
        COUNTING.targets,
"""


def install_plugin(root):
    """A package ``counting_study`` and its distribution's entry point, importable from
    ``root`` (on PYTHONPATH): what ``pip install`` of a study package would leave."""
    pkg = root / "counting_study"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "plan.py").write_text(textwrap.dedent(PLAN))
    (pkg / "rules.smk").write_text(textwrap.dedent(RULES))
    info = root / "counting_study-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: counting-study\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINTS}]\ncounting = counting_study\n")


def test_the_builtin_studies_are_the_registry_without_plugins():
    assert [s.name for s in registry()] == list(BUILTIN)
    assert all(s.rules.is_file() and s.plan_module.plan for s in registry())


def test_a_registered_study_is_planned_and_run_through_the_core(
    tmp_path, tokenizer, docs, monkeypatch
):
    plugin = tmp_path / "plugin"
    install_plugin(plugin)
    cfg = one_model_config(tmp_path, tokenizer, docs, counting={"label": "seen"})
    monkeypatch.syspath_prepend(str(plugin))
    studies = registry()
    assert [s.name for s in studies][-1] == "counting"

    run = plan_run(cfg, Paths(str(tmp_path / "results")))
    assert run.named["counting"].startswith("runs")
    assert run.store_passes("run", "text") == {"eval_loss": True}
    assert len(run.studies["counting"].targets) == 2  # two checkpoints, one corpus
    for bad, key in (({"label": 3}, "counting.label"), ({"label": "refuse"}, "counting.label")):
        try:
            plan_run({**cfg, "counting": bad})
        except ConfigError as err:
            assert key in str(err)
        else:
            raise AssertionError(f"{bad} was not refused")

    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    env = {"PYTHONPATH": str(plugin)}
    res = snakemake(tmp_path, tmp_path / "config.yaml", "--cores", "2", "counting", env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    for target in run.studies["counting"].targets:
        record = json.loads((tmp_path / target).read_text())
        assert record["label"] == "seen" and record["tokens"] > 0  # the pass it asked for
    again = snakemake(tmp_path, tmp_path / "config.yaml", "-n", "counting", env=env)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_a_study_not_named_plans_nothing(tmp_path, tokenizer, docs):
    run = plan_run(one_model_config(tmp_path, tokenizer, docs))
    assert all(not s.targets for s in run.studies.values())
    assert dict(run.passes) == {}
    assert run.targets == [] and len(run.kept_stores) == 2
