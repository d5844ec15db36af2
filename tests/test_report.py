"""The Snakemake report builds from a finished run, with every study's figures."""

from __future__ import annotations

import zipfile

import pytest

from tests.workflow import snakemake

pytestmark = pytest.mark.slow


def test_report_builds(run_dir, tmp_path):
    report = tmp_path / "report.zip"
    res = snakemake(run_dir, run_dir / "config.yaml", "--report", str(report))
    assert res.returncode == 0, res.stderr[-3000:]
    names = zipfile.ZipFile(report).namelist()
    pngs = [n for n in names if n.endswith(".png")]
    assert any("shape_of_learning" in n for n in pngs) and any("anisotropy" in n for n in pngs)
