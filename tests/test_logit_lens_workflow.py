"""The logit lens and GRIDE in the test config's run: datasets, figures and tables."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from tests.workflow import table_rows

pytestmark = pytest.mark.slow


def test_logit_lens_of_the_causal_model(run_dir):
    res = run_dir / "results"
    assert not (res / "metrics" / "logit_lens" / "encoder.nc").exists()  # a masked LM
    lens = xr.open_dataset(res / "metrics" / "logit_lens" / "decoder.nc")
    assert lens.logit_lens_loss.dims == ("step", "corpus", "layer", "decoding")
    assert str(lens.model.values) == "decoder"
    assert list(lens.step.values) == ["step0", "step4", "step8"]
    loss = xr.open_dataset(res / "metrics" / "eval_loss" / "decoder.nc").eval_loss
    last = lens.logit_lens_loss.sel(layer=int(lens.layer[-1]), decoding="final_norm")
    np.testing.assert_allclose(last.sel(corpus="docs"), loss.sel(corpus="docs"), rtol=1e-9)
    assert (lens.logit_lens_agreement.sel(layer=int(lens.layer[-1])) == 1).all()
    for name in ("loss_by_layer", "agreement_by_layer"):
        assert (res / "figures" / "logit_lens" / f"{name}.png").stat().st_size > 1000
    rows = table_rows(res / "tables" / "logit_lens" / "logit_lens.csv")
    assert len(rows) == 3 * 2 * 3 * 2  # step × corpus × layer × decoding
    assert {"model", "step", "corpus", "decoding", "layer", "logit_lens_loss"} <= set(rows[0])


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
    assert (figure / "decoder" / "docs.png").stat().st_size > 1000
