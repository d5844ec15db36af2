"""The default and SLURM profiles parse and plan the test config (dry run, nothing submitted);
the SLURM profile's values survive the workflow profile and route GPU jobs to a GPU partition."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
import yaml

from repgeom.workflow.footprint import extraction_mem_mb
from tests.workflow import ROOT, planned_jobs, snakemake

PROFILES = ROOT / "profiles"


def profile(name: str) -> dict:
    return yaml.safe_load((PROFILES / name / "config.yaml").read_text())


@pytest.mark.parametrize("name", ["default", "slurm"])
def test_profile_dry_run(name, tmp_path):
    args = ["-n", "--profile", str(PROFILES / name)]
    res = snakemake(tmp_path, ROOT / "config" / "test.yaml", *args)
    assert res.returncode == 0, res.stderr[-3000:]
    jobs = planned_jobs(res)
    assert jobs["extract"] > 0 and jobs["all"] == 1


def test_workflow_profile_leaves_slurm_keys_alone():
    """Snakemake loads profiles/default with every run and its keys win over --profile's: it
    must not set any key the SLURM profile sets, nor cores (which caps a cluster run's jobs and
    threads at the submitting host's CPU count)."""
    default, slurm = profile("default"), profile("slurm")
    assert not default.keys() & slurm.keys()
    assert "cores" not in default


def test_slurm_profile_values_apply(monkeypatch):
    from snakemake.cli import parse_args

    monkeypatch.chdir(ROOT)
    slurm = profile("slurm")
    _, args = parse_args(["-s", str(ROOT / "Snakefile"), "--profile", str(PROFILES / "slurm")])
    assert args.executor == "slurm"
    assert args.latency_wait == slurm["latency-wait"]
    assert args.cores is None
    assert args.slurm_partition_config == PROFILES / "slurm" / "partitions.yaml"
    assert args.set_threads["extract"].value == slurm["set-threads"]["extract"]
    # a profile's default-resources keep Snakemake's own defaults for the keys it does not set
    assert {"mem_mb", "runtime"} <= args.default_resources.keys()


def test_slurm_profile_resources_reach_jobs(tmp_path):
    """The dry run shows the profile's per-rule resources on the extract jobs (memory: the
    rule's, computed per checkpoint), and no partition set for any job (partitions.yaml chooses
    it)."""
    res = snakemake(
        tmp_path, ROOT / "config" / "test.yaml", "-n", "--profile", str(PROFILES / "slurm")
    )
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout + res.stderr
    want = profile("slurm")["set-resources"]["extract"]
    extract = [
        dict(re.findall(r"(\w+)=([^,\n]+)", m.group(1)))
        for m in re.finditer(r"^rule extract:\n(?:    .*\n)*?    resources: (.*)$", out, re.M)
    ]
    assert len(extract) == planned_jobs(res)["extract"]
    for resources in extract:  # mem_mb: the rule's own (trained models: its default)
        assert int(resources["mem_mb"]) == extraction_mem_mb({"source": "train"}, "", {}, 0, 0, 0)
        assert int(resources["runtime"]) == want["runtime"]
    assert "slurm_partition" not in out


def _job(name: str, gpu: int) -> SimpleNamespace:
    resources = {"gpu": gpu, "mem_mb": 4000, "runtime": 120}
    return SimpleNamespace(name=name, threads=1, resources=SimpleNamespace(get=resources.get))


def test_partitions_send_gpu_jobs_to_a_gpu_partition():
    """The plugin's partition selection with profiles/slurm/partitions.yaml: a job asking for a
    GPU lands in a partition with GPUs, every other job in one without."""
    plugin = pytest.importorskip("snakemake_executor_plugin_slurm.partitions")
    partitions = plugin.read_partition_file(PROFILES / "slurm" / "partitions.yaml")
    has_gpus = {p.name: p.limits.max_gpu > 0 for p in partitions}
    log = SimpleNamespace(info=lambda *a: None, debug=lambda *a: None, warning=lambda *a: None)
    for gpu in (0, 1):
        chosen = plugin.get_best_partition(partitions, _job("extract", gpu), log)
        assert has_gpus[chosen] == bool(gpu), (gpu, chosen)
