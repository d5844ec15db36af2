"""End to end (the shared run of config/test.yaml): the similarity datasets of every store, their
invariants, one value recomputed from the stored activations, and the figures."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from repgeom.activations.store import ActivationStore
from repgeom.io import read_dataset
from repgeom.metrics.family import alpha_req, rankme
from repgeom.plots.similarity import alpha_req_by_step, cka_to_final_by_step
from repgeom.sampling import seeded_subsample

pytestmark = pytest.mark.slow

CORPORA = ["docs", "random"]


def kernel_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA in float64 from the n × n kernels centred with H = I − 11ᵀ/n."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    n = len(x)
    h = np.eye(n) - 1.0 / n
    k, lk = h @ (x @ x.T) @ h, h @ (y @ y.T) @ h
    return float(np.sum(k * lk) / np.sqrt(np.sum(k * k) * np.sum(lk * lk)))


def kernel_cka_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Debiased linear CKA: the unbiased HSIC (Song et al. 2012) of the kernels with zeroed
    diagonals, in float64."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    n = len(x)

    def hsic(a: np.ndarray, b: np.ndarray) -> float:
        a, b = a - np.diag(np.diag(a)), b - np.diag(np.diag(b))
        return (
            np.sum(a * b)
            + a.sum() * b.sum() / ((n - 1) * (n - 2))
            - 2.0 / (n - 2) * a.sum(axis=0) @ b.sum(axis=1)
        ) / (n * (n - 3))

    k, lk = x @ x.T, y @ y.T
    return hsic(k, lk) / np.sqrt(hsic(k, k) * hsic(lk, lk))


def test_similarity_datasets(run_dir):
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    sample = cfg["metrics"]["similarity"]["sample"]
    res = run_dir / "results"
    for model, spec in cfg["models"].items():
        steps = [f"step{s}" for s in spec["training"]["checkpoints"]]
        ds = read_dataset(res / "metrics" / "similarity" / f"{model}.nc")
        assert ds.cka_layers.dims == ("step", "corpus", "layer", "layer_other")
        assert ds.cka_to_final.dims == ("step", "corpus", "layer")
        assert list(ds.step.values) == steps and list(ds.corpus.values) == CORPORA
        assert list(ds.layer.values) == [0, 1, 2] == list(ds.layer_other.values)
        assert ds.attrs["final_step"] == steps[-1] and "config_hash" in ds.attrs
        for var in ("cka_layers", "cka_layers_debiased", "cka_to_final", "cka_to_final_debiased"):
            assert ds[var].attrs["long_name"] and ds[var].attrs["units"] == "1"
        for corpus in CORPORA:
            store = ActivationStore(res / "activations" / model / steps[0] / f"{corpus}.zarr")
            assert (ds.n_tokens.sel(corpus=corpus) == min(sample, store.n_tokens)).all()
            for step in steps:
                assert (res / "metrics" / "similarity" / model / step / f"{corpus}.nc").is_file()
        for var in ("cka_layers", "cka_layers_debiased"):
            m = ds[var].transpose(..., "layer", "layer_other").values
            np.testing.assert_array_equal(np.diagonal(m, axis1=-2, axis2=-1), 1.0)
            np.testing.assert_allclose(m, np.swapaxes(m, -1, -2), rtol=1e-12)
        assert np.isfinite(ds.cka_layers).all() and (ds.cka_layers <= 1 + 1e-12).all()
        for var in ("cka_to_final", "cka_to_final_debiased"):
            np.testing.assert_allclose(ds[var].sel(step=steps[-1]), 1.0, rtol=1e-12)
        assert (ds.cka_to_final.sel(step=steps[0]) < 1 - 1e-6).all()
        figures = res / "figures" / "similarity"
        for kind in ("png", "pdf"):
            assert (figures / "cka_to_final" / f"{model}.{kind}").is_file()
            for corpus in CORPORA:
                assert (figures / "cka_layers" / model / f"{corpus}.{kind}").is_file()
        fig = cka_to_final_by_step(ds)  # what the figure job drew, from this run's dataset
        line = fig.axes[0].get_lines()[0]  # first corpus, standard estimator, layer 0
        layer0 = ds.cka_to_final.sel(corpus=CORPORA[0], layer=int(ds.layer[0]))
        np.testing.assert_allclose(line.get_ydata(), layer0.values)


def test_one_value_recomputed_from_the_stores(run_dir):
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    sample = cfg["metrics"]["similarity"]["sample"]
    res = run_dir / "results"
    model, first, last, corpus = "decoder", "step0", "step8", "docs"
    store = ActivationStore(res / "activations" / model / first / f"{corpus}.zarr")
    final = ActivationStore(res / "activations" / model / last / f"{corpus}.zarr")
    assert store.n_tokens > sample  # the seeded subsample, not every token
    rows = seeded_subsample(store.n_tokens, sample, 0)
    ds = read_dataset(res / "metrics" / "similarity" / f"{model}.nc").sel(step=first, corpus=corpus)
    x1, x2, y1 = store.read(1, rows), store.read(2, rows), final.read(1, rows)
    assert float(ds.cka_to_final.sel(layer=1)) == pytest.approx(kernel_cka(x1, y1), rel=1e-9)
    assert float(ds.cka_to_final_debiased.sel(layer=1)) == pytest.approx(
        kernel_cka_unbiased(x1, y1), rel=1e-9
    )
    assert float(ds.cka_layers.sel(layer=1, layer_other=2)) == pytest.approx(
        kernel_cka(x1, x2), rel=1e-9
    )


def test_spectral_decay_of_every_layer(run_dir):
    """RankMe and α-ReQ for every layer of every store, equal to those of the stored
    explained-variance spectrum where it is complete, and the α-ReQ figure draws them."""
    res = run_dir / "results"
    for model in ("decoder", "encoder"):
        ds = read_dataset(res / "metrics" / "anisotropy" / f"{model}.nc")
        for var in ("rankme", "alpha_req"):
            assert ds[var].dims[-1] == "layer" and np.isfinite(ds[var]).all(), var
        step, corpus = str(ds.step[-1].values), str(ds.corpus[0].values)
        store = ActivationStore(res / "activations" / model / step / f"{corpus}.zarr")
        got = ds.sel(positions="all", step=step, corpus=corpus)
        for layer in ds.layer.values:  # float64 SVD of the stored tokens, every token
            x = store.read(int(layer)).astype(np.float64)
            w = np.linalg.svd(x - x.mean(0), compute_uv=False) ** 2
            last = min(len(w), len(x) - 1)
            assert float(got.rankme.sel(layer=layer)) == pytest.approx(rankme(w), rel=1e-6)
            assert float(got.alpha_req.sel(layer=layer)) == pytest.approx(
                alpha_req(w, 1, last), rel=1e-6
            )
        fig = alpha_req_by_step(ds)
        drawn = fig.axes[0].get_lines()[0].get_ydata()
        want = ds.alpha_req.sel(positions="all", corpus=str(ds.corpus[0].values)).isel(layer=0)
        np.testing.assert_allclose(drawn, want.values)
        for kind in ("png", "pdf"):
            assert (res / "figures" / "similarity" / "alpha_req" / f"{model}.{kind}").is_file()
