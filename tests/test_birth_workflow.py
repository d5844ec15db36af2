"""The Birth-of-a-Transformer study through the workflow: datasets, figures, config errors."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import yaml

from repgeom.io import read_dataset
from tests.workflow import ROOT, check_figure, snakemake

pytestmark = pytest.mark.slow
VARIANTS = ("simplified_fixed", "one_layer")  # config/test.yaml's Birth variants


def test_birth_outputs(run_dir):
    res = run_dir / "results"
    for variant in VARIANTS:
        ds = read_dataset(res / "birth" / f"{variant}.nc")
        assert ds.loss.dims == ("iteration",) and list(ds.iteration.values) == [0, 10, 20]
        assert np.isfinite(ds.loss).all() and np.isfinite(ds.acc_incontext).all()
        att = read_dataset(res / "birth" / f"{variant}_attention.nc")
        assert att.attention.dims == ("layer", "query", "key")
        np.testing.assert_allclose(att.attention.sum("key"), 1.0, rtol=1e-5)
    inputs = [f"results/birth/{v}{s}.nc" for v in VARIANTS for s in ("", "_attention")]
    for name in ("training_curves", "memory_probes", "attention_maps"):
        check_figure(run_dir, res / "figures" / "birth" / f"{name}.png", "birth_figures", inputs)


def test_bad_variant_key_stops_before_any_job(tmp_path):
    cfg = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
    cfg = copy.deepcopy(cfg)
    cfg["birth"]["variants"]["simplified_fixed"] = {"d_modle": 8}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = snakemake(tmp_path, path, "--cores", "1")
    out = res.stdout + res.stderr
    assert res.returncode != 0 and "birth.variants.simplified_fixed" in out and "d_modle" in out
    assert not (tmp_path / "results").exists()
