"""The documentation site: the configuration reference is the schema's, the site builds with
``mkdocs build --strict`` (broken links and anchors fail it), the shell blocks marked to run do
run, the tests the pages name exist, and the notebook page's Python runs on a run's results."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest

from repgeom.workflow.config import SCHEMA_PATH, load_schema
from repgeom.workflow.schema_doc import REGENERATE, render
from tests.workflow import ROOT

DOCS = ROOT / "docs"
PAGE = DOCS / "configuration.md"
# a shell block the docs claim runs: this comment on the line before its fence
RUNS = re.compile(
    r"^(?P<indent>[ \t]*)<!-- test: runs -->[ \t]*\n(?P=indent)```(?:bash|sh|console)[ \t]*\n"
    r"(?P<body>.*?)^(?P=indent)```",
    flags=re.M | re.S,
)
NAMED_TEST = re.compile(r"`(tests/[\w/]+\.py)?::(test_\w+)`")


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


# --- the configuration reference ----------------------------------------------------------------


def test_the_configuration_page_is_the_schemas():
    assert PAGE.read_text(encoding="utf-8") == render(), (
        "docs/configuration.md is out of date with config/schema.yaml; regenerate it with\n"
        f"  {REGENERATE}"
    )


def schema_keys(node: Any, path: str = "") -> list[tuple[str, dict]]:
    """Every property of an (inlined) schema at any depth, by dotted path: ``<name>`` for the
    values of a mapping of names, ``[]`` for the items of an array."""
    if not isinstance(node, dict):
        return []
    out = []
    for key, sub in (node.get("properties") or {}).items():
        where = f"{path}.{key}" if path else key
        out.append((where, sub))
        out += schema_keys(sub, where)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        out += schema_keys(extra, f"{path}.<name>")
    items = node.get("items")
    if isinstance(items, dict):
        out += schema_keys(items, f"{path}[]")
    return out


def documented(page: str) -> dict[str, str]:
    """Key -> its description on the page: a section's paragraph, a table row's last cell."""
    out = {}
    for section in re.split(r"^## ", page, flags=re.M)[1:]:
        head, _, body = section.partition("\n")
        key = re.match(r"`([^`]+)`", head).group(1)
        out[key] = body.strip().split("\n\n")[0]
    for row in re.findall(r"^\| `([^`]+)` \|(.*)\|$", page, flags=re.M):
        out[row[0]] = row[1].split(" | ")[-1].strip()
    return out


def test_every_schema_key_is_on_the_page_with_its_description():
    keys = schema_keys(load_schema(SCHEMA_PATH))
    assert len(keys) > 150  # the walk reaches the nested keys and the referenced files
    shown = documented(PAGE.read_text(encoding="utf-8"))
    missing = [k for k, _ in keys if k not in shown]
    undescribed = [k for k, sub in keys if not str(sub.get("description", "")).strip()]
    empty = [k for k, _ in keys if k in shown and not shown[k]]
    assert not missing, f"keys of the schema missing from docs/configuration.md: {missing}"
    assert not undescribed, f"keys of the schema without a description: {undescribed}"
    assert not empty, f"keys without a description on docs/configuration.md: {empty}"
    for key in ("corpora.<name>.encoding", "birth.variants.<name>.seq_len", "languages.groups[]"):
        assert any(k.startswith(key) for k in shown), key


def test_a_schema_edit_changes_the_page(tmp_path):
    """The page follows the schema: a new key, a new default and a new kind-dependent default
    show up in its rows, so the comparison above fails until it is regenerated."""
    schema = tmp_path / "schema.yaml"
    text, n = re.subn(
        r"^( +)top_k: \{type: integer, minimum: 1, default: 32,",
        r"\1new_key: {type: number, exclusiveMaximum: 3, default: 0.5, description: new key}\n"
        r"\1top_k: {type: integer, minimum: 1, default: 64,",
        SCHEMA_PATH.read_text(encoding="utf-8"),
        flags=re.M,
    )
    assert n == 1
    schema.write_text(text, encoding="utf-8")
    (tmp_path / "schema").symlink_to(SCHEMA_PATH.parent / "schema")
    page = render(schema)
    assert page != PAGE.read_text(encoding="utf-8")
    assert "| `metrics.geometry.new_key` | number | `0.5` | < 3 | new key |" in page
    assert "| `metrics.geometry.top_k` | integer | `64` | ≥ 1 |" in page
    assert "| `corpora.<name>.encoding` | string | `utf-8` where kind is `text` |" in page
    assert "required where kind is `text`, `flores` or `minimal_pairs`" in page
    assert "`0` (a variant's default)" in page  # birth's $defs.variant fills the variants


def test_the_generator_is_a_command(capsys):
    from repgeom.workflow import schema_doc

    assert schema_doc.main([]) == 0
    assert capsys.readouterr().out == render()
    assert schema_doc.main(["extra"]) == 2


# --- the site --------------------------------------------------------------------------------------


def test_the_site_builds_strict(tmp_path):
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip('mkdocs is not installed: pip install -e ".[test]" (or ".[docs]")')
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    res = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, "mkdocs build --strict failed:\n" + res.stderr[-5000:]
    site = tmp_path / "site"
    assert "metrics.geometry.id_sample" in (site / "configuration" / "index.html").read_text()
    api = (site / "api" / "workflow" / "index.html").read_text()
    assert "plan_run" in api and ":func:" not in api  # docstrings rendered, roles dropped


# --- what the pages claim ----------------------------------------------------------------------


def runnable_blocks() -> list[tuple[str, str]]:
    """(page, shell code) of every block marked ``<!-- test: runs -->``."""
    out = []
    for page in pages():
        for m in RUNS.finditer(page.read_text(encoding="utf-8")):
            body = textwrap.dedent(m["body"])
            out.append((page.relative_to(ROOT).as_posix(), body))
    return out


def test_marked_shell_blocks_run(tmp_path):
    """Each marked block runs with bash in a scratch directory holding an empty ``docs/`` (so
    the regeneration command writes there, not into the checkout), with ``python`` being this
    interpreter; the regenerated page is the committed one."""
    blocks = runnable_blocks()
    commands = "\n".join(code for _, code in blocks)
    assert len(blocks) >= 3 and "repgeom.workflow.schema_doc" in commands
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("python", "python3"):
        (bin_dir / name).symlink_to(sys.executable)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    for i, (page, code) in enumerate(blocks):
        work = tmp_path / f"block{i}"
        (work / "docs").mkdir(parents=True)
        res = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", code],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert res.returncode == 0, f"{page}: a block marked to run failed:\n{code}\n{res.stderr}"
        made = work / "docs" / "configuration.md"
        if made.exists():
            assert made.read_text(encoding="utf-8") == PAGE.read_text(encoding="utf-8")


def test_the_tests_the_pages_name_exist():
    """`tests/<file>.py::<test>` names a test function of that file; a bare `::<test>` one of
    the file named last on the same page."""
    named = 0
    for page in pages():
        current = None
        for file, test in NAMED_TEST.findall(page.read_text(encoding="utf-8")):
            current = file or current
            assert current, f"{page.name}: ::{test} follows no tests/<file>.py"
            tree = ast.parse((ROOT / current).read_text(encoding="utf-8"))
            functions = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
            assert test in functions, f"{page.name}: {current}::{test} does not exist"
            named += 1
    assert named > 30


def test_the_plugin_study_shown_is_the_one_tested():
    """contributing.md shows the plan.py of tests/test_study_registry.py's plug-in study."""
    tree = ast.parse((ROOT / "tests" / "test_study_registry.py").read_text(encoding="utf-8"))
    (PLAN,) = (
        n.value.value
        for n in tree.body
        if isinstance(n, ast.Assign)
        and [t.id for t in n.targets if isinstance(t, ast.Name)] == ["PLAN"]
    )
    text = (DOCS / "contributing.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert textwrap.dedent(PLAN).strip() + "\n" in blocks


# --- the notebook page on a run's results --------------------------------------------------------

DEFAULT_NAMES = 'model, step, corpus = "decoder", "step1024", "python_docs"'
TEST_NAMES = 'model, step, corpus = "decoder", "step8", "docs"'


@pytest.mark.slow
def test_notebook_snippets_run_on_results(run_dir, tmp_path, monkeypatch):
    """The Python of docs/notebook.md runs, in order, on the test config's results (its names
    for the default run's store replaced by the test config's), without a FutureWarning."""
    text = (DOCS / "notebook.md").read_text(encoding="utf-8")
    code = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(code) >= 4 and DEFAULT_NAMES in code[0]
    work = tmp_path / "notebook"
    work.mkdir()
    os.symlink(run_dir / "results", work / "results")  # read-only use of the shared run
    monkeypatch.chdir(work)
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        for block in code:
            exec(
                compile(block.replace(DEFAULT_NAMES, TEST_NAMES), "notebook.md", "exec"), namespace
            )
    assert (work / "anisotropy_layer2.png").stat().st_size > 0
    assert namespace["both"].sizes["model"] == 2
    assert namespace["provenance"]["rule"] == "shape_of_learning_figure"
    assert set(namespace["table"].columns) >= {"model", "step", "layer"}
