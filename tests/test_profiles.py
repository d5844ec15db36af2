"""The default and SLURM profiles parse and plan the test config (dry run, nothing submitted)."""

from __future__ import annotations

import pytest

from tests.workflow import ROOT, planned_jobs, snakemake


@pytest.mark.parametrize("profile", ["default", "slurm"])
def test_profile_dry_run(profile, tmp_path):
    res = snakemake(
        tmp_path, ROOT / "config" / "test.yaml", "-n", "--profile", str(ROOT / "profiles" / profile)
    )
    assert res.returncode == 0, res.stderr[-3000:]
    jobs = planned_jobs(res)
    assert jobs["extract"] > 0 and jobs["all"] == 1
