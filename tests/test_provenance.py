"""Figures and tables carry their provenance: config values, code, inputs' sha256, versions."""

from __future__ import annotations

import hashlib
import json
import subprocess

import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr

from repgeom.io import write_text
from repgeom.plots.common import figure_provenance, save_figure
from repgeom.provenance import artifact_provenance, read_comment_header
from tests.workflow import ROOT, table_rows


def head_commit() -> str:
    """The commit of this checkout (the library runs from it)."""
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def _figure() -> plt.Figure:
    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [1, 0, 2])
    return fig


def test_artifact_provenance_records_params_and_input_sha256(tmp_path):
    data = tmp_path / "in.nc"
    data.write_bytes(b"some bytes")
    meta = artifact_provenance({"models": ["a", "b"], "code": "abc123"}, [data], "my_rule")
    assert meta["rule"] == "my_rule" and meta["device"] == "cpu"
    assert json.loads(meta["config"]) == {"code": "abc123", "models": ["a", "b"]}
    digests = json.loads(meta["inputs"])
    assert digests == {str(data): hashlib.sha256(b"some bytes").hexdigest()}
    versions = json.loads(meta["package_versions"])
    assert versions["numpy"] == np.__version__ and versions["xarray"] == xr.__version__


def test_png_and_pdf_embed_the_provenance_and_are_reproducible(tmp_path):
    meta = {"rule": "r", "config": json.dumps({"k": 1})}
    paths = [tmp_path / "a.png", tmp_path / "a.pdf"]
    save_figure(_figure(), *paths, meta=meta)
    assert figure_provenance(paths[0]) == meta
    pdf = paths[1].read_bytes()
    assert b"repgeom-provenance" in pdf and b"CreationDate" not in pdf
    again = [tmp_path / "b.png", tmp_path / "b.pdf"]
    save_figure(_figure(), *again, meta=meta)
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in paths]


@pytest.mark.parametrize(("name", "marker"), [("t.csv", "#"), ("t.tex", "%")])
def test_text_tables_start_with_provenance_comments(tmp_path, name, marker):
    meta = {"rule": "r", "config": json.dumps({"k": [1, 2]})}
    path = tmp_path / name
    write_text(path, "a,b\n1,2\n", meta)
    lines = path.read_text().splitlines()
    assert lines[0] == f"{marker} repgeom provenance"
    assert read_comment_header(path, marker) == meta
    assert lines[-2:] == ["a,b", "1,2"]
    if marker == "#":
        assert table_rows(path) == [{"a": "1", "b": "2"}]


def test_workflow_figures_and_tables_name_their_inputs(run_dir):
    res = run_dir / "results"
    fig = figure_provenance(res / "figures" / "shape_of_learning" / "anisotropy_by_layer.png")
    table = read_comment_header(res / "tables" / "shape_of_learning" / "anisotropy.csv")
    tex = read_comment_header(res / "tables" / "shape_of_learning" / "anisotropy.tex", "%")
    assert fig["rule"] == "shape_of_learning_figure" and table["rule"] == tex["rule"]
    for meta in (fig, table):
        inputs = json.loads(meta["inputs"])
        assert "results/metrics/anisotropy/decoder.nc" in inputs
        for path, digest in inputs.items():
            assert hashlib.sha256((run_dir / path).read_bytes()).hexdigest() == digest
        assert json.loads(meta["config"])["models"] == ["decoder", "encoder"]
        assert meta["repgeom_git_commit"] == head_commit()
        assert json.loads(meta["package_versions"])["numpy"] == np.__version__
    rows = table_rows(res / "tables" / "shape_of_learning" / "anisotropy.csv")
    assert rows and {"model", "step", "layer", "anisotropy"} <= set(rows[0])
