"""End to end: config/test.yaml in a temp dir; every output opens; reruns do only what changed."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from repgeom.io import read_dataset
from repgeom.store import ActivationStore
from tests.workflow import planned_jobs, snakemake

pytestmark = pytest.mark.slow


def test_outputs_open_with_expected_dims(run_dir):
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    res = run_dir / "results"
    for model in cfg["models"]:
        log = read_dataset(res / "models" / model / "training.nc")
        assert np.isfinite(log.eval_loss.dropna("step")).all()
        for step in cfg["models"][model]["training"]["checkpoints"]:
            assert (res / "models" / model / f"step{step}" / "config.json").is_file()
            for corpus in ("docs", "random"):
                store = ActivationStore(
                    res / "activations" / model / f"step{step}" / f"{corpus}.zarr"
                )
                assert store.layers == [0, 1, 2] and store.hidden_size == 32
                assert np.isfinite(store.read(2)).all()
        ds = read_dataset(res / "metrics" / "anisotropy" / f"{model}.nc")
        assert ds.anisotropy.dims == ("step", "corpus", "layer")
        assert ds.sizes["step"] == len(cfg["models"][model]["training"]["checkpoints"])
        assert (
            np.isfinite(ds.anisotropy).all()
            and (ds.anisotropy > 0).all()
            and (ds.anisotropy <= 1).all()
        )
        assert "config_hash" in ds.attrs and "package_versions" in ds.attrs
        for suffix in ("png", "pdf"):
            assert (res / "figures" / "anisotropy" / f"{model}.{suffix}").stat().st_size > 1000
    stats = yaml.safe_load((res / "corpora" / "docs" / "stats.json").read_text())
    assert stats["n_documents"] == 300 and len(stats["sha256"]) == 64
    assert "python_version" in stats


def test_second_run_has_nothing_to_do(run_dir):
    res = snakemake(run_dir, run_dir / "config.yaml", "-n")
    assert res.returncode == 0 and planned_jobs(res) == {}, res.stdout[-3000:]


def test_param_edit_reruns_only_dependent_jobs(run_dir, tmp_path):
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    cfg["metrics"] = {"anisotropy": {"drop_first_position": True}}
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(cfg))
    jobs = planned_jobs(snakemake(run_dir, edited, "-n"))
    assert jobs == {"anisotropy": 10, "gather_metric": 2, "figure_anisotropy": 2, "all": 1}
    cfg["extraction"]["max_tokens"] = 512
    edited.write_text(yaml.safe_dump(cfg))
    jobs = planned_jobs(snakemake(run_dir, edited, "-n"))
    assert jobs["extract"] == 10 and "train_decoder" not in jobs and "tokens" not in jobs
