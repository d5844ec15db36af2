"""The README's "Working with results" snippets run, in order, on the test config's results,
without a FutureWarning."""

from __future__ import annotations

import os
import re
import warnings

import pytest

from tests.workflow import ROOT

pytestmark = pytest.mark.slow
# the snippets name the embedded default's store; the test config's is this one
DEFAULT_NAMES = 'model, step, corpus = "decoder", "step1024", "python_docs"'
TEST_NAMES = 'model, step, corpus = "decoder", "step8", "docs"'


def snippets() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Working with results", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_readme_snippets_run_on_results(run_dir, tmp_path, monkeypatch):
    code = snippets()
    assert len(code) >= 4 and DEFAULT_NAMES in code[0]
    work = tmp_path / "notebook"
    work.mkdir()
    os.symlink(run_dir / "results", work / "results")  # read-only use of the shared run
    monkeypatch.chdir(work)
    namespace: dict = {}
    with warnings.catch_warnings():
        # a snippet must not lean on a default that a library is about to change
        warnings.simplefilter("error", FutureWarning)
        for block in code:
            exec(compile(block.replace(DEFAULT_NAMES, TEST_NAMES), "README.md", "exec"), namespace)
    assert (work / "anisotropy_layer2.png").stat().st_size > 0
    assert namespace["both"].sizes["model"] == 2
    assert namespace["provenance"]["rule"] == "shape_of_learning_figure"
    assert set(namespace["table"].columns) >= {"model", "step", "layer"}
