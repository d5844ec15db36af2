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
    pngs = {n.rsplit("/", 1)[-1] for n in names if n.endswith(".png")}
    expected = {
        "decoder.png",  # spine
        "anisotropy_by_layer.png",  # shape of learning
        "training_curves.png",  # birth
        "eval_loss.png",  # softmax bottleneck
    }
    assert expected <= pngs
    assert any(n.endswith("_grammaticality.png") for n in pngs)  # languages
    html = zipfile.ZipFile(report).read("report/report.html").decode()
    # captions state the config values that made each figure (config/test.yaml)
    assert "intrinsic dimension on 2 seeded subsample(s) of 64 tokens" in html
    assert "MLE with k = 5" in html and "20 bootstrap replicates at level 0.95" in html
    assert "batch 8, 20 iterations of adamw" in html
    assert 'class="problematic"' not in html  # every caption is valid reStructuredText
    config_lines = [part.split("</p>")[0] for part in html.split("Config used")[1:]]
    assert len(config_lines) >= 10 and not any("None" in line for line in config_lines)
