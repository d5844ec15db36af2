"""The logit lens and GRIDE in the test config's run: datasets, figures and tables."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import yaml

from tests.workflow import check_figure, planned_jobs, snakemake, table_rows

pytestmark = pytest.mark.slow


def test_logit_lens_of_the_causal_model(run_dir):
    res = run_dir / "results"
    assert not (res / "metrics" / "logit_lens" / "encoder.nc").exists()  # a masked LM
    lens = xr.open_dataset(res / "metrics" / "logit_lens" / "decoder.nc")
    assert lens.logit_lens_loss.dims == ("step", "corpus", "layer", "decoding")
    assert lens.logit_lens_loss_se.dims == lens.logit_lens_loss.dims
    assert lens.logit_lens_agreement_se.attrs["long_name"]
    assert str(lens.model.values) == "decoder"
    assert list(lens.step.values) == ["step0", "step4", "step8"]
    tokens = lens.logit_lens_tokens
    assert (tokens.sel(corpus="docs") == 256).all()  # logit_lens.tokens in config/test.yaml
    assert (tokens.sel(corpus="random") == 4 * 31).all()  # every position of a smaller store
    loss = xr.open_dataset(res / "metrics" / "eval_loss" / "decoder.nc").eval_loss
    assert (loss.sel(corpus="docs") > 0).all()
    last = lens.sel(layer=int(lens.layer[-1]), decoding="final_norm", corpus="docs")
    # the last layer on 256 sampled positions: the eval loss of every position within 5 SE
    assert (abs(last.logit_lens_loss - loss.sel(corpus="docs")) < 5 * last.logit_lens_loss_se).all()
    assert (lens.logit_lens_agreement.sel(layer=int(lens.layer[-1])) == 1).all()
    assert (lens.logit_lens_loss_se.sel(layer=0) > 0).all()
    for name in ("loss_by_layer", "agreement_by_layer"):
        png = res / "figures" / "logit_lens" / f"{name}.png"
        check_figure(run_dir, png, "logit_lens_figures", ["results/metrics/logit_lens/decoder.nc"])
    rows = table_rows(res / "tables" / "logit_lens" / "logit_lens.csv")
    assert len(rows) == 3 * 2 * 3 * 2  # step × corpus × layer × decoding
    assert {"model", "step", "corpus", "decoding", "layer", "logit_lens_loss"} <= set(rows[0])
    assert {"logit_lens_loss_se", "logit_lens_agreement_se", "logit_lens_tokens"} <= set(rows[0])


def test_stores_compute_only_what_a_study_reads(run_dir):
    """The eval loss only where the bottleneck study reads it (the decoder on docs), the lens
    only for the lens study's model on the extraction corpora, neither anywhere else."""
    store = run_dir / "results" / "activations"
    for path, has_loss, has_lens in (
        ("decoder/step8/docs.zarr", True, True),
        ("decoder/step8/random.zarr", False, True),  # not an eval corpus of the bottleneck
        ("decoder/step8/scripts-Latn.zarr", False, False),  # the languages study's corpus
        ("encoder/step8/docs.zarr", False, False),  # a masked LM
    ):
        ds = xr.open_zarr(store / path)
        assert ("eval_loss" in ds.attrs) == has_loss, path
        assert ("logit_lens_loss" in ds) == has_lens == ("logit_lens_tokens" in ds.attrs), path


def test_lens_budget_edit_reruns_only_the_lens_stores(run_dir, tmp_path):
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    cfg["logit_lens"]["tokens"] = 128
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(cfg))
    jobs = planned_jobs(snakemake(run_dir, edited, "-n"))
    assert jobs["extract"] == 6  # the decoder's 3 checkpoints × 2 extraction corpora
    assert "train_decoder" not in jobs and "tokens" not in jobs


def test_gride_in_the_geometry_datasets(run_dir):
    res = run_dir / "results"
    ids = xr.open_dataset(res / "metrics" / "intrinsic_dimension" / "decoder.nc")
    assert ids.gride.dims == ("step", "corpus", "positions", "layer", "repeat", "scale")
    assert ids.scale.values.tolist() == [1, 2, 4, 8, 16]  # gride_scales: 5 in config/test.yaml
    assert np.isfinite(ids.gride.sel(scale=4)).all() and (ids.gride_error > 0).all()
    rows = table_rows(res / "tables" / "shape_of_learning" / "intrinsic_dimension.csv")
    assert {"twonn_error", "gride_at_scale", "gride_at_scale_error", "twonn_gride_disagree"} <= set(
        rows[0]
    )
    figure = res / "figures" / "shape_of_learning" / "intrinsic_dimension_by_scale"
    ids = "results/metrics/intrinsic_dimension/decoder.nc"
    check_figure(run_dir, figure / "decoder" / "docs.png", "shape_of_learning_scale_figure", [ids])
