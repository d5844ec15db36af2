"""The results manifest lists every final artifact and its check reports every difference."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys

import pytest

from repgeom.workflow.manifest import main, verify, write_manifest


def test_manifest_round_trip(tmp_path):
    (tmp_path / "results" / "figures").mkdir(parents=True)
    for name in ("a.png", "b.png"):
        (tmp_path / "results" / "figures" / name).write_bytes(name.encode() * 100)
    rows = [(f"results/figures/{n}", "fig_rule", "cfg", "code") for n in ("a.png", "b.png")]
    manifest = tmp_path / "results" / "manifest.tsv"
    write_manifest(rows, manifest, tmp_path)
    assert not verify(manifest, tmp_path)
    assert main([str(manifest), "--root", str(tmp_path)]) == 0
    (tmp_path / "results" / "figures" / "a.png").write_bytes(b"tampered")
    (tmp_path / "results" / "figures" / "b.png").unlink()
    (tmp_path / "results" / "figures" / "c.png").write_bytes(b"new")
    diff = verify(manifest, tmp_path)
    assert diff.changed == ["results/figures/a.png"]
    assert diff.missing == ["results/figures/b.png"]
    assert diff.unexpected == ["results/figures/c.png"]
    assert main([str(manifest), "--root", str(tmp_path)]) == 1


def test_manifest_checks_from_any_directory(tmp_path, monkeypatch, capsys):
    """`python -m repgeom.workflow.manifest /abs/results/manifest.tsv` run elsewhere reads the
    paths where the workflow wrote them (the manifest folder's parent), not in the cwd."""
    run = tmp_path / "run"
    (run / "results" / "tables").mkdir(parents=True)
    (run / "results" / "tables" / "t.csv").write_text("a,b\n1,2\n")
    manifest = run / "results" / "manifest.tsv"
    monkeypatch.chdir(run)  # as the manifest rule does, in the workflow's directory
    write_manifest([("results/tables/t.csv", "table_rule", "cfg", "code")], "results/manifest.tsv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main([str(manifest)]) == 0
    assert capsys.readouterr().out == f"all 1 artifacts match {manifest}\n"
    res = subprocess.run(
        [sys.executable, "-m", "repgeom.workflow.manifest", str(manifest)],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0 and res.stdout.startswith("all 1 artifacts match"), res.stdout
    (run / "results" / "tables" / "t.csv").unlink()
    assert main([str(manifest)]) == 1
    assert capsys.readouterr().out == "missing     results/tables/t.csv\n"


@pytest.mark.slow
def test_workflow_manifest_matches_its_run(run_dir, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run_dir / "results", copy / "results")
    manifest = copy / "results" / "manifest.tsv"
    assert not verify(manifest, copy)
    with open(manifest) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    rules = {r["rule"] for r in rows}
    assert {"figure_anisotropy", "shape_of_learning_figure", "shape_of_learning_table"} <= rules
    assert all(len(r["sha256"]) == 64 and r["code_hash"] and r["config_hash"] for r in rows)
    target = copy / rows[0]["path"]
    target.write_bytes(target.read_bytes() + b"x")
    assert verify(manifest, copy).changed == [rows[0]["path"]]
