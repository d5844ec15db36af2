"""End to end: config/test.yaml in a temp dir; every output opens; reruns do only what changed."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from repgeom.activations.store import ActivationStore
from repgeom.io import read_dataset
from tests.workflow import check_figure, planned_jobs, snakemake

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
        assert ds.anisotropy.dims == ("step", "corpus", "positions", "layer")
        assert ds.sizes["step"] == len(cfg["models"][model]["training"]["checkpoints"])
        assert (
            np.isfinite(ds.anisotropy).all()
            and (ds.anisotropy > 0).all()
            and (ds.anisotropy <= 1).all()
        )
        assert "config_hash" in ds.attrs and "package_versions" in ds.attrs
        png = res / "figures" / "anisotropy" / f"{model}.png"
        check_figure(run_dir, png, "figure_anisotropy", [f"results/metrics/anisotropy/{model}.nc"])
    stats = yaml.safe_load((res / "corpora" / "docs" / "stats.json").read_text())
    assert stats["n_documents"] == 300 and len(stats["sha256"]) == 64
    assert "python_version" in stats


def _unit_mean_cosine(x: np.ndarray) -> float:
    """Mean cosine over ordered pairs of distinct rows, float64, from the N × N matrix."""
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    cos = u @ u.T
    return float((cos.sum() - np.trace(cos)) / (len(u) * (len(u) - 1)))


def test_where_anisotropy_comes_from(run_dir):
    """The geometry job's dimensions and frequency datasets, per store and gathered, with one
    value of each recomputed in float64 numpy from the stored tokens, and their figures."""
    from repgeom.data.tokens import read_tokens

    res = run_dir / "results"
    dims = read_dataset(res / "metrics/dimensions/decoder/step8/docs.nc")
    freq = read_dataset(res / "metrics/frequency/decoder/step8/docs.nc")
    assert dims["mean_cosine_without_rogue"].dims == ("positions", "layer", "without_top")
    assert dims["cosine_contribution"].dims == ("positions", "layer", "hidden")
    assert dims["rogue_dimension"].dims == ("positions", "layer", "rogue_rank")
    assert dims["massive_count"].sizes["hidden"] == 32 and dims["massive_ratio"].notnull().all()
    assert list(dims["without_top"].values) == [1, 3, 10] and dims.attrs["top_k"] == 10
    assert freq["anisotropy"].dims == ("positions", "layer", "bucket")
    assert freq["drift_spearman"].dims == ("positions", "layer", "direction")
    assert list(freq["bucket"].values) == list(range(9)) and freq.attrs["split"] == "train"
    store = ActivationStore(res / "activations/decoder/step8/docs.zarr")
    x = store.read(2).astype(np.float64)
    # the top-1 rogue dimension, and the mean cosine once it is deleted
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    contribution = (u.sum(0) ** 2 - (u**2).sum(0)) / (len(u) * (len(u) - 1))
    at = {"positions": "all", "layer": 2}
    top = int(dims["rogue_dimension"].sel(**at, rogue_rank=1))
    assert top == int(np.argmax(contribution))
    without = float(dims["mean_cosine_without_rogue"].sel(**at, without_top=1))
    assert without == pytest.approx(_unit_mean_cosine(np.delete(x, top, axis=1)), rel=1e-9)
    later = store.position != 0
    median = float(np.median(np.abs(store.read(1)[later]).astype(np.float64)))
    assert float(dims["median_abs"].sel(positions="no_first", layer=1)) == median
    # a bucket's tokens: their ids' counts in the train split of the corpus's token store
    train = read_tokens(res / "tokens/bpe/docs.zarr", "train")
    counts = np.bincount(train.ids[np.arange(train.ids.shape[1]) < train.lengths[:, None]])
    assert int(freq["train_tokens"]) == counts.sum() == train.n_tokens
    count = np.append(counts, 0)[np.minimum(store.token_id, len(counts))]
    low, high = freq["count_low"].sel(bucket=5), freq["count_high"].sel(bucket=5)
    bucket = (count >= float(low)) & (count < float(high))
    assert int(freq["n_tokens"].sel(**at, bucket=5)) == bucket.sum() > 1
    assert float(freq["mean_cosine"].sel(**at, bucket=5)) == pytest.approx(
        _unit_mean_cosine(x[bucket]), rel=1e-9
    )
    for metric in ("dimensions", "frequency"):
        gathered = read_dataset(res / f"metrics/{metric}/decoder.nc")
        assert list(gathered["step"].values) == ["step0", "step4", "step8"]
        assert list(gathered["corpus"].values) == ["docs", "random"]
        var = "massive_ratio" if metric == "dimensions" else "mean_cosine"
        assert gathered[var].dims[:4] == ("step", "corpus", "positions", "layer")
    inputs = [f"results/metrics/{m}/decoder.nc" for m in ("dimensions", "frequency")]
    for name in ("rogue_share", "massive_ratio", "frequency_last", "frequency_by_step"):
        png = res / "figures/origins" / name / "decoder.png"
        check_figure(run_dir, png, "origins_figures", inputs)


def test_languages_study_outputs(run_dir):
    from repgeom.data.corpus import read_documents
    from repgeom.languages.transliteration import untransliterate

    res = run_dir / "results"
    corpora = {
        m: read_documents(res / "corpora" / f"scripts-{m}" / "eval.jsonl") for m in ("Latn", "Cyrl")
    }
    assert 2 <= len(corpora["Latn"]) <= 40  # test.yaml: n_sentences 40 (fewer qualify)
    # sentence i of every script is sentence i of the original
    assert [untransliterate(t, "Cyrl") for t in corpora["Cyrl"]] == corpora["Latn"]
    good = read_documents(res / "corpora" / "pairs-good" / "eval.jsonl")
    bad = read_documents(res / "corpora" / "pairs-bad" / "eval.jsonl")
    assert len(good) == len(bad) and all(
        g != b and sorted(g.split()) == sorted(b.split()) for g, b in zip(good, bad, strict=True)
    )
    assert not (res / "metrics" / "languages" / "encoder").exists()  # test.yaml: decoder only
    for model in ("decoder",):
        stores = {
            c: ActivationStore(res / "activations" / model / "step8" / f"{c}.zarr")
            for c in ("scripts-Latn", "scripts-Cyrl", "pairs-good", "pairs-bad")
        }
        assert {s.n_sentences for c, s in stores.items() if c.startswith("scripts")} == {
            len(corpora["Latn"])
        }
        assert stores["pairs-good"].n_sentences == stores["pairs-bad"].n_sentences == len(good)
        ds = read_dataset(res / "metrics" / "languages" / model / "step8.nc")
        assert ds["id"].dims == ("language", "layer", "level")
        assert list(ds["language"].values) == list(stores)
        assert list(ds["layer"].values) == [0, 1, 2]
        assert list(ds["level"].values) == ["sentence", "token"]
        for var in ("id", "anisotropy"):
            assert np.isfinite(ds[var]).all() and (ds[var] > 0).all(), var
        assert (ds["anisotropy"] <= 1).all()
        sentence = ds.sel(level="sentence")
        assert np.isfinite(sentence["knn_kl"]).all() and np.isfinite(sentence["softmax_kl"]).all()
        assert (sentence["softmax_kl"].sel(language=["scripts-Latn", "pairs-good"]) == 0).all()
        assert (sentence["softmax_kl"].sel(language="scripts-Cyrl") > 0).all()
        assert (sentence["softmax_kl"].sel(language="pairs-bad") >= 0).all()
        assert ds.attrs["model"] == model and json.loads(ds.attrs["synthetic_groups"]) == [
            "scripts",
            "pairs",
        ]
        # GRIDE at the scales 32 sentences allow (n2 ≤ 31 neighbours), NaN above; at token level
        # never n2 = 256 in 256-token subsamples (at layer 0 a repeated token is one point: the
        # Cyrillic transliteration has about 30 distinct ones)
        assert (ds["n_points"].sel(level="sentence") == 32).all()
        gride = ds["gride"].sel(level="sentence")
        assert np.isfinite(gride.sel(scale=[1, 2, 4, 8])).all()
        assert np.isnan(gride.sel(scale=[16, 32, 64, 128])).all()
        tokens = ds["gride"].sel(level="token")
        assert np.isfinite(tokens.sel(scale=4)).all() and np.isnan(tokens.sel(scale=128)).all()
        assert (ds["gride_error"].sel(level="token", scale=ds.attrs["gride_scale"]) > 0).all()
        boot = read_dataset(res / "metrics" / "grammaticality" / model / "step8.nc")
        assert boot["id_diff"].dims == ("pairs", "layer") and boot.sizes["boot"] == 20
        assert (boot["id_diff_low"] <= boot["id_diff_high"]).all()
        figures = res / "figures" / "languages" / model / "step8"
        inputs = [f"results/metrics/{m}/{model}/step8.nc" for m in ("languages", "grammaticality")]
        for stem in (
            "scripts_id_anisotropy",
            "scripts_id_by_scale",
            "scripts_heatmaps",
            "scripts_divergence",
            "scripts_scripts",
            "pairs_id_anisotropy",
            "pairs_grammaticality",
        ):
            check_figure(run_dir, figures / f"{stem}.png", "languages_figures", inputs)


def test_second_run_has_nothing_to_do(run_dir):
    res = snakemake(run_dir, run_dir / "config.yaml", "-n")
    assert res.returncode == 0 and planned_jobs(res) == {}, res.stdout[-3000:]


def test_param_edit_reruns_only_dependent_jobs(run_dir, tmp_path):
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    cfg["metrics"]["geometry"]["mle_k"] = 4
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(cfg))
    jobs = planned_jobs(snakemake(run_dir, edited, "-n"))
    assert jobs == {
        "geometry": 10,
        "gather_metric": 10,  # anisotropy, ID, linearity, dimensions, frequency of 2 models
        "figure_anisotropy": 2,
        "alpha_req_figure": 2,
        "origins_figures": 2,
        "shape_of_learning_figure": 7,
        "shape_of_learning_scale_figure": 4,
        "shape_of_learning_table": 3,
        "manifest": 1,
        "all": 1,
    }
    cfg["extraction"]["max_tokens"] = 512
    edited.write_text(yaml.safe_dump(cfg))
    jobs = planned_jobs(snakemake(run_dir, edited, "-n"))
    # the extraction options are one param: the 10 spine stores and the 4 of the languages
    # study (4 corpora at the decoder's last step) are extracted again
    assert jobs["extract"] == 14 and "train_decoder" not in jobs and "tokens" not in jobs
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    cfg["languages"]["n_boot"] = 10
    cfg["languages"]["steps"] = "last"  # the default: choosing checkpoints changes no job
    edited.write_text(yaml.safe_dump(cfg))
    jobs = planned_jobs(snakemake(run_dir, edited, "-n", "languages"))
    assert jobs == {"languages_metrics": 1, "languages_figures": 1, "languages": 1}


def test_the_test_config_has_no_duplicate_checkpoints(run_dir):
    """The test config's trained models: every checkpoint's weights differ (the schedule's first
    update has a learning rate above 0), each store records its checkpoint's fingerprint."""
    for model in ("decoder", "encoder"):
        ds = read_dataset(run_dir / f"results/metrics/weights/{model}.nc")
        assert set(ds["duplicate_of"].values) == {""}
        assert set(ds["partial_duplicate_of"].values) == {""}
        assert len(set(ds["fingerprint"].values)) == ds.sizes["step"]
        assert not ds["discontinuity"].values.any()
        assert (ds["distance_to_first"].values[1:] > 0).all()
        gate = read_dataset(run_dir / f"results/weights/{model}/integrity.nc")
        assert list(gate["fingerprint"].values) == list(ds["fingerprint"].values)
        for step, fingerprint in zip(ds["step"].values, ds["fingerprint"].values, strict=True):
            store = ActivationStore(run_dir / f"results/activations/{model}/{step}/docs.zarr")
            assert store.attrs["checkpoint_fingerprint"] == fingerprint
        aniso = read_dataset(run_dir / f"results/metrics/anisotropy/{model}.nc")
        assert aniso.attrs.get("checkpoint_fingerprint") is None  # per step: a coordinate
        assert list(aniso["fingerprint"].values) == list(ds["fingerprint"].values)
    check_figure(
        run_dir,
        run_dir / "results/figures/weights/decoder.png",
        "weights_figure",
        ["results/metrics/weights/decoder.nc"],
    )
