"""End to end: the softmax-bottleneck study of config/test.yaml (the shared run) and its refusals."""

from __future__ import annotations

import math
import shutil
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np
import pytest
import xarray as xr
import yaml

from repgeom.activations.store import ActivationStore
from repgeom.bottleneck.memory import ngram_memory_estimate
from repgeom.bottleneck.ngram_werror import werror_thresholds
from repgeom.data.tokens import read_tokens, tokens_attrs
from repgeom.io import read_dataset
from tests.workflow import check_figure, snakemake, table_rows

if TYPE_CHECKING:
    from matplotlib.lines import Line2D

pytestmark = pytest.mark.slow
STEPS = ["step0", "step4", "step8"]


def results(run_dir):
    return run_dir / "results"


def test_eval_loss_and_cosine(run_dir):
    res = results(run_dir)
    loss = read_dataset(res / "metrics" / "eval_loss" / "decoder.nc")
    assert loss.eval_loss.dims == ("step", "corpus")
    assert list(loss.step.values) == STEPS and list(loss.corpus.values) == ["docs"]
    assert np.isfinite(loss.eval_loss).all() and (loss.eval_loss > 0).all()
    cos = read_dataset(res / "metrics" / "last_layer_cosine" / "decoder.nc")
    assert cos.mean_cosine.dims == ("step", "corpus")
    for step in STEPS:
        store = ActivationStore(res / "activations" / "decoder" / step / "docs.zarr")
        value = loss.eval_loss.sel(step=step, corpus="docs")
        assert float(value) == store.attrs["eval_loss"]
        assert (
            int(loss.eval_loss_tokens.sel(step=step, corpus="docs"))
            == store.attrs["eval_loss_tokens"]
        )
        x = store.read(store.layers[-1]).astype(np.float64)
        u = x / np.linalg.norm(x, axis=1, keepdims=True)
        s = u.sum(axis=0)
        ref = (s @ s - len(u)) / (len(u) * (len(u) - 1))
        assert float(cos.mean_cosine.sel(step=step, corpus="docs")) == pytest.approx(ref, rel=1e-9)
    # the masked-LM encoder has no next-token loss: not part of the study
    assert not (res / "metrics" / "eval_loss" / "encoder.nc").exists()
    assert "config_hash" in loss.attrs and "package_versions" in cos.attrs


def test_lm_head_spectrum(run_dir):
    from repgeom.activations.models import Checkpoint

    res = results(run_dir)
    ds = read_dataset(res / "metrics" / "lm_head" / "decoder.nc")
    assert ds.sigma.dims == ("step", "index") and ds.sizes == {"step": 3, "index": 32}
    assert list(ds.step.values) == STEPS
    np.testing.assert_array_equal(ds.step_number, [0, 4, 8])
    assert np.isfinite(ds.sigma).all() and (ds.sigma.diff("index") <= 0).all()
    assert ((ds.singular_entropy >= 0) & (ds.singular_entropy <= math.log(32))).all()
    for step in STEPS:
        one = read_dataset(res / "metrics" / "lm_head" / "decoder" / f"{step}.nc")
        np.testing.assert_array_equal(one.sigma, ds.sigma.sel(step=step))
    w = Checkpoint(str(res / "models" / "decoder" / "step8")).load()
    w = w.get_output_embeddings().weight.detach().double().numpy()
    ref = np.linalg.svd(w, compute_uv=False)
    np.testing.assert_allclose(ds.sigma.sel(step="step8"), ref, rtol=1e-7)
    p = ref / ref.sum()
    entropy = math.log(len(p)) + float((p * np.log(p)).sum())
    assert float(ds.singular_entropy.sel(step="step8")) == pytest.approx(entropy, rel=1e-9)


def test_rank_restricted_heads(run_dir):
    res = results(run_dir)
    ds = read_dataset(res / "heads" / "decoder" / "step8.nc")
    assert ds.perplexity.dims == ("rank",)
    assert list(ds["rank"].values) == [1, 2, 4, 8, 16, 32]  # powers of 2 up to d
    for var in ("eval_loss", "perplexity", "train_loss_final"):
        assert np.isfinite(ds[var]).all()
    np.testing.assert_allclose(ds.perplexity, np.exp(ds.eval_loss))
    assert ds.attrs["n_train_tokens"] == 2048 and ds.attrs["layer"] == 2
    # the model's own head on the stored final-norm features reproduces the extraction's eval
    # loss (same targets, float16-stored features)
    store = ActivationStore(res / "activations" / "decoder" / "step8" / "docs.zarr")
    assert ds.attrs["n_eval_tokens"] == store.attrs["eval_loss_tokens"]
    assert float(ds.model_head_loss) == pytest.approx(store.attrs["eval_loss"], rel=1e-3)
    # the train features were a temp() output, removed after the job
    assert not (res / "heads" / "decoder" / "step8.train.zarr").exists()


def test_ngram_werror(run_dir):
    res = results(run_dir)
    ds = read_dataset(res / "ngram" / "bpe" / "docs.nc")
    assert ds.werror.dims == ("rank",) and ds.sigma.dims == ("index",)
    assert ds.werror.sel(rank=0) == pytest.approx(1.0)
    assert (ds.werror.diff("rank") <= 1e-12).all() and (ds.werror >= 0).all()
    assert ds.attrs["k"] == 32 and ds.sizes["index"] == 32
    assert (
        ds.attrs["corpus_sha256"]
        == tokens_attrs(res / "tokens" / "bpe" / "docs.zarr")["corpus_sha256"]
    )
    rows = table_rows(res / "tables" / "bottleneck" / "ngram_thresholds.csv")
    expect = werror_thresholds(ds, (0.5, 0.2, 0.1))
    assert rows == [
        {
            "tokenizer": "bpe",
            "corpus": "docs",
            **{f"d_werror_below_{t:g}": str(d) for t, d in expect.items()},
        }
    ]


def test_best_vs_final_table_matches_the_eval_loss(run_dir):
    res = results(run_dir)
    loss = read_dataset(res / "metrics" / "eval_loss" / "decoder.nc").eval_loss.sel(corpus="docs")
    rows = table_rows(res / "tables" / "bottleneck" / "best_vs_final.csv")
    assert len(rows) == 1 and (rows[0]["model"], rows[0]["corpus"]) == ("decoder", "docs")
    best = STEPS[int(np.argmin(loss.values))]
    assert rows[0]["best_step"] == best and rows[0]["final_step"] == "step8"
    assert float(rows[0]["best_loss"]) == pytest.approx(float(loss.min()), rel=1e-5)
    assert float(rows[0]["final_loss"]) == pytest.approx(float(loss[-1]), rel=1e-5)
    gap = float(loss[-1] - loss.min())
    assert float(rows[0]["final_minus_best"]) == pytest.approx(gap, rel=1e-5, abs=1e-9)
    tex = (res / "tables" / "bottleneck" / "best_vs_final.tex").read_text()
    assert r"\toprule" in tex and f"{float(loss.min()):.4f}" in tex


FIGURES = ["eval_loss", "lm_head_spectrum_decoder", "entropy_cosine_loss"]
FIGURES += ["heads_perplexity", "ngram_werror"]
# what the figures are drawn from (one job draws them all)
FIGURE_INPUTS = [
    "results/metrics/eval_loss/decoder.nc",
    "results/metrics/last_layer_cosine/decoder.nc",
    "results/metrics/lm_head/decoder.nc",
    "results/heads/decoder/step8.nc",
    "results/ngram/bpe/docs.nc",
]


def test_figures_are_drawn_from_the_study_datasets(run_dir):
    """Each figure is a picture with coloured lines on it (not blank) that names the datasets it
    is drawn from, byte for byte; its PDF carries the same provenance."""
    fig = results(run_dir) / "figures" / "bottleneck"
    for stem in FIGURES:
        check_figure(run_dir, fig / f"{stem}.png", "bottleneck_figures", FIGURE_INPUTS)


def _xy(line: Line2D) -> tuple[np.ndarray, np.ndarray]:
    """A line's x and y as float arrays."""
    return np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)


def _check_eval_loss_figure(B: ModuleType, eval_loss: xr.DataArray, steps: list[int]) -> None:
    """The eval loss over steps, its best checkpoint starred."""
    import matplotlib.pyplot as plt

    f = B.eval_loss_vs_step({"decoder": eval_loss})
    (line, star, _) = f.axes[0].lines  # the model, its best checkpoint, the legend's star
    np.testing.assert_array_equal(_xy(line)[0], steps)
    np.testing.assert_array_equal(_xy(line)[1], eval_loss.values)
    best = int(np.argmin(eval_loss.values))
    np.testing.assert_array_equal(_xy(star)[1], [eval_loss.values[best]])
    assert line.get_label() == "decoder"
    plt.close(f)


def _check_spectrum_figure(B: ModuleType, spectrum: xr.Dataset) -> None:
    """One line of normalised singular values per checkpoint."""
    import matplotlib.pyplot as plt

    f = B.singular_spectrum_over_training(spectrum)
    lines = f.axes[0].lines
    assert len(lines) == len(STEPS)
    for step, line in zip(STEPS, lines, strict=True):  # step0, step4, step8
        sigma = spectrum.sigma.sel(step=step).values.astype(float)
        x, y = _xy(line)
        np.testing.assert_allclose(x, np.arange(1, 33) / 32)
        np.testing.assert_allclose(y, sigma / sigma[0], rtol=1e-12)
    plt.close(f)


def _check_panels_figure(
    B: ModuleType,
    spectrum: xr.Dataset,
    cos: xr.Dataset,
    loss: xr.Dataset,
    eval_loss: xr.DataArray,
    steps: list[int],
) -> None:
    """The singular entropy, mean cosine and eval loss panels over steps."""
    import matplotlib.pyplot as plt

    panels = xr.merge(
        [
            spectrum[["singular_entropy"]],
            cos[["mean_cosine"]].sel(corpus="docs", drop=True),
            loss[["eval_loss"]].sel(corpus="docs", drop=True),
        ],
        join="outer",
        compat="override",
    )
    f = B.entropy_cosine_loss_vs_step({"decoder": panels})
    expected = [
        spectrum.singular_entropy.values,
        cos.mean_cosine.sel(corpus="docs").values,
        eval_loss.values,
    ]
    for ax, values in zip(f.axes, expected, strict=True):
        (line,) = ax.lines
        np.testing.assert_array_equal(_xy(line)[0], steps)
        np.testing.assert_allclose(_xy(line)[1], values, rtol=1e-12)
    plt.close(f)


def _check_heads_figure(B: ModuleType, heads: xr.Dataset) -> None:
    """The heads' perplexity by rank, with the full-rank and model-head references."""
    import matplotlib.pyplot as plt

    f = B.perplexity_vs_rank({"decoder · step8": heads})
    line = f.axes[0].lines[0]
    np.testing.assert_array_equal(_xy(line)[0], [1, 2, 4, 8, 16, 32])
    np.testing.assert_allclose(_xy(line)[1], heads.perplexity.values, rtol=1e-12)
    refs = {ln.get_linestyle(): _xy(ln)[1][0] for ln in f.axes[0].lines[1:3]}
    assert refs["--"] == pytest.approx(float(heads.full_rank_perplexity))
    assert refs[":"] == pytest.approx(float(heads.model_head_perplexity))
    plt.close(f)


def _check_werror_figure(B: ModuleType, ngram: xr.Dataset) -> None:
    """The n-gram W-error by rank, with its thresholds."""
    import matplotlib.pyplot as plt

    f = B.werror_vs_rank({"docs × bpe": ngram})
    line = f.axes[0].lines[0]
    np.testing.assert_array_equal(_xy(line)[0], ngram["rank"].values)
    np.testing.assert_allclose(_xy(line)[1], ngram.werror.values, rtol=1e-12)
    assert _xy(line)[1][0] == pytest.approx(1.0)  # d = 0: nothing of P is kept
    thresholds = [_xy(ln)[1][0] for ln in f.axes[0].lines[1:]]
    assert thresholds == [0.5, 0.2, 0.1]
    plt.close(f)


def test_figures_plot_the_study_datasets(run_dir):
    """The plotting functions the figures job calls, on this run's datasets, draw their values:
    eval loss, singular values, entropy / cosine / loss panels, head perplexity, W-error."""
    from repgeom.bottleneck import plots as B

    res = results(run_dir)
    loss = read_dataset(res / "metrics" / "eval_loss" / "decoder.nc")
    cos = read_dataset(res / "metrics" / "last_layer_cosine" / "decoder.nc")
    spectrum = read_dataset(res / "metrics" / "lm_head" / "decoder.nc")
    heads = read_dataset(res / "heads" / "decoder" / "step8.nc")
    ngram = read_dataset(res / "ngram" / "bpe" / "docs.nc")
    steps = [0, 4, 8]  # the x of the step-axis figures: training steps
    eval_loss = loss.eval_loss.sel(corpus="docs", drop=True)
    _check_eval_loss_figure(B, eval_loss, steps)
    _check_spectrum_figure(B, spectrum)
    _check_panels_figure(B, spectrum, cos, loss, eval_loss, steps)
    _check_heads_figure(B, heads)
    _check_werror_figure(B, ngram)


def edited(run_dir, tmp_path, **bottleneck):
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    for key, value in bottleneck.items():
        cfg["bottleneck"].setdefault(key, {}).update(value)
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_heads_beyond_memory_stop_before_any_job(run_dir, tmp_path):
    res = snakemake(run_dir, edited(run_dir, tmp_path, heads={"batch_size": 10**8}), "-n")
    assert res.returncode != 0
    assert "config key 'bottleneck.heads'" in res.stderr and "lower batch_size" in res.stderr


def test_ngram_counting_beyond_memory_stops_before_any_job(run_dir, tmp_path):
    # the token store exists: the number of n-grams is known when the config is parsed
    res = snakemake(run_dir, edited(run_dir, tmp_path, ngram={"memory_mb": 1}), "-n")
    assert res.returncode != 0
    assert "config key 'bottleneck.ngram'" in res.stderr and "n-grams needs" in res.stderr


def test_ngram_svd_beyond_memory_stops_the_job_with_its_message(run_dir, tmp_path):
    """Counting fits the budget, the SVD does not: the job refuses before allocating it and the
    message reaches the terminal, not only the job's log."""
    work = tmp_path / "work"
    for part in ("corpora", "tokenizers", "tokens"):
        shutil.copytree(run_dir / "results" / part, work / "results" / part)
    tokens = read_tokens(work / "results" / "tokens" / "bpe" / "docs.zarr", "train")
    est = ngram_memory_estimate(len(tokens.lengths), tokens.ids.shape[1], 512, 32, 1, 5)
    budget_mb = math.ceil(est["counting"] / 2**20) + 1
    config = edited(run_dir, tmp_path, ngram={"memory_mb": budget_mb})
    res = snakemake(
        work, config, "--cores", "1", "results/ngram/bpe/docs.nc", "--rerun-triggers", "mtime"
    )
    assert res.returncode != 0
    assert "config key 'bottleneck.ngram' (bpe, docs)" in res.stderr
    assert "the SVD stage" in res.stderr and "lower k" in res.stderr
    assert not (work / "results" / "ngram" / "bpe" / "docs.nc").exists()
