"""A run killed with SIGKILL mid-training and restarted finishes with the same results as an
uninterrupted run (which also shows that two runs from scratch agree). Both runs build only
what is compared (the training logs and the geometry datasets, from scratch): the studies' and
figures' jobs downstream of them would add minutes and nothing to the comparison."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from repgeom.io import read_dataset
from tests.workflow import ROOT, snakemake

pytestmark = pytest.mark.slow
MODELS = ("decoder", "encoder")  # config/test.yaml's models
METRICS = ("anisotropy", "intrinsic_dimension", "linearity")
TARGETS = [f"results/models/{model}/training.nc" for model in MODELS] + [
    f"results/metrics/{metric}/{model}.nc" for metric in METRICS for model in MODELS
]


def kill_when(work, marker, timeout=300) -> None:
    """Start the workflow and SIGKILL its whole process group once ``marker`` exists."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(ROOT / "Snakefile"),
            "--directory",
            str(work),
            "--configfile",
            str(work / "config.yaml"),
            "--cores",
            "2",
            *TARGETS,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + timeout
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def test_killed_run_resumes_to_identical_results(run_dir, tmp_path):
    work = tmp_path / "killed"
    work.mkdir()
    shutil.copy(run_dir / "config.yaml", work / "config.yaml")
    kill_when(work, work / "results" / "models" / "decoder" / "step0")
    assert not all((work / target).exists() for target in TARGETS)  # killed before the end
    # the documented restart: release the killed run's lock, then run the same command again
    assert snakemake(work, work / "config.yaml", "--unlock").returncode == 0
    res = snakemake(work, work / "config.yaml", "--cores", "2", *TARGETS)
    assert res.returncode == 0, res.stderr[-4000:]
    for model in MODELS:
        a = read_dataset(run_dir / "results" / "models" / model / "training.nc")
        b = read_dataset(work / "results" / "models" / model / "training.nc")
        np.testing.assert_array_equal(a.train_loss.values, b.train_loss.values)
        for metric in METRICS:
            a = read_dataset(run_dir / "results" / "metrics" / metric / f"{model}.nc")
            b = read_dataset(work / "results" / "metrics" / metric / f"{model}.nc")
            for var in a.data_vars:
                np.testing.assert_array_equal(
                    a[var].values, b[var].values, err_msg=f"{metric}.{var}"
                )
    leftovers = [p for p in (work / "results").rglob("*.tmp")]
    assert leftovers == []
