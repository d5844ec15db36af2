"""Reruns follow the code: editing a library module reruns exactly the rules that import it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from repgeom.workflow.codehash import module_closure
from tests.workflow import ROOT, planned_jobs, snakemake

pytestmark = pytest.mark.slow


def test_module_closure_follows_imports():
    extract = module_closure((ROOT / "scripts" / "extract.py").resolve())
    assert {
        "repgeom.activations.extraction",
        "repgeom.activations.store",
        "repgeom.activations.loss",
        "repgeom.data.tokens",
    } <= set(extract)
    assert not any(m.startswith("repgeom.plots") for m in extract)
    figure = module_closure((ROOT / "scripts" / "figure_anisotropy.py").resolve())
    assert "repgeom.plots.anisotropy" in figure and "repgeom.metrics.anisotropy" not in figure
    # extraction depends on no planning code (the footprint, the projection, the planner)
    assert not [m for m in extract if m.startswith("repgeom.workflow")]
    assert "repgeom.activations.size" in extract and "repgeom.metrics.moments" not in extract


@pytest.fixture
def source_copy(tmp_path) -> Path:
    """A copy of the workflow and library whose modules a test may edit."""
    for name in ("Snakefile", "rules", "scripts", "config", "src", "report", "envs"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    return tmp_path


def plan_with(copy: Path, run_dir: Path) -> dict[str, int]:
    """Dry run of the test config's results with the copied Snakefile and library."""
    res = snakemake(
        run_dir,
        run_dir / "config.yaml",
        "-n",
        snakefile=copy / "Snakefile",
        env={"PYTHONPATH": str(copy / "src")},
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return planned_jobs(res)


def edit(path: Path) -> None:
    path.write_text(path.read_text() + "\n# an edit\n")


def test_code_edits_rerun_only_their_rules(run_dir, source_copy):
    assert plan_with(source_copy, run_dir) == {}
    # planning code (the planner, the paths, the config checks, each study's plan) is in no
    # job's code hash: editing it reruns nothing
    for planner in ("workflow/plan.py", "workflow/paths.py", "workflow/config.py"):
        edit(source_copy / "src" / "repgeom" / planner)
    for study in ("bottleneck", "languages", "logit_lens", "birth", "shape_of_learning"):
        edit(source_copy / "src" / "repgeom" / study / "plan.py")
    assert plan_with(source_copy, run_dir) == {}
    edit(source_copy / "src" / "repgeom" / "plots" / "anisotropy.py")
    assert plan_with(source_copy, run_dir) == {"figure_anisotropy": 2, "manifest": 1, "all": 1}
    edit(source_copy / "src" / "repgeom" / "shape_of_learning" / "plots.py")
    assert plan_with(source_copy, run_dir) == {
        "figure_anisotropy": 2,
        "shape_of_learning_figure": 7,
        "shape_of_learning_scale_figure": 4,
        "shape_of_learning_table": 3,
        "manifest": 1,
        "all": 1,
    }
    edit(source_copy / "src" / "repgeom" / "metrics" / "moments.py")
    jobs = plan_with(source_copy, run_dir)
    # the geometry jobs' five datasets (anisotropy, intrinsic dimension, linearity, dimensions,
    # frequency) are gathered again for both models
    assert jobs["geometry"] == 10 and jobs["gather_metric"] == 10
    upstream = {"corpus", "train_tokenizer", "tokens", "train_decoder", "train_encoder", "extract"}
    assert not upstream & set(jobs)
