"""Checkpoint integrity through the workflow, on a local run the workflow did not make: step1 a
byte copy of step0, step2 step0's tensors in other shards, step8 holding step16's embedding.
The default stops before any extraction; ``integrity.duplicates: keep`` carries the duplicates
into the weights dataset, the gathered metrics and the step figures."""

from __future__ import annotations

import math
import shutil

import pytest
import yaml

from repgeom.activations.store import ActivationStore
from repgeom.io import read_dataset
from tests.test_weights import EMBED, LABELS, build_run, numpy_weights, reference
from tests.workflow import check_figure, snakemake

pytestmark = pytest.mark.slow
# every checkpoint of tests/test_weights.py's run but step4, which plants nothing checked here
# (the duplicates are step1 and step2 of step0, the partial one step8 of step16): one
# checkpoint fewer to fingerprint, extract and measure in the workflow runs
KEPT = [label for label in LABELS if label != "step4"]


@pytest.fixture(scope="module")
def run(tmp_path_factory, tokenizer, docs):
    root = tmp_path_factory.mktemp("integrity")
    build_run(root / "run", vocab=len(tokenizer))
    shutil.rmtree(root / "run" / "step4")
    for label in KEPT:
        tokenizer.save_pretrained(root / "run" / label)
    (root / "text.txt").write_text("\n\n".join(docs[:120]), encoding="utf-8")
    return root


def config(root, **extra) -> dict:
    return {
        "corpora": {"text": {"kind": "text", "path": str(root / "text.txt")}},
        "tokenizers": {"own": {"kind": "from_model", "model": "run", "window": 32}},
        "models": {"run": {"source": "local", "path": str(root / "run"), "tokenizer": "own"}},
        "extraction": {"max_tokens": 256, "batch_size": 16, "device": "cpu"},
        "metrics": {"geometry": {"id_sample": 64, "id_repeats": 2, "mle_k": 5, "top_k": 4}},
        **extra,
    }


def test_duplicates_stop_the_run_before_any_extraction(run, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "config.yaml").write_text(yaml.safe_dump(config(run)))
    res = snakemake(work, work / "config.yaml", "--cores", "2")
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "step1 and step2 hold the same weights as step0" in out, out[-3000:]
    assert "integrity.duplicates: keep" in out and "models.run.steps" in out
    assert not (work / "results" / "activations").exists()  # no extraction job ran
    assert not (work / "results" / "weights" / "run" / "integrity.nc").exists()


@pytest.fixture(scope="module")
def kept(run, tmp_path_factory):
    work = tmp_path_factory.mktemp("kept")
    (work / "config.yaml").write_text(yaml.safe_dump(config(run, integrity={"duplicates": "keep"})))
    targets = [
        "results/metrics/weights/run.nc",
        "results/figures/weights/run.png",
        "results/figures/similarity/alpha_req/run.png",
    ]
    res = snakemake(work, work / "config.yaml", "--cores", "2", *targets)
    assert res.returncode == 0, res.stderr[-5000:]
    return work


def test_kept_duplicates_are_in_the_weights_dataset(run, kept):
    ds = read_dataset(kept / "results/metrics/weights/run.nc")
    assert list(ds["step"].values) == KEPT
    dup = dict(zip(KEPT, ds["duplicate_of"].values, strict=True))
    assert dup == {**dict.fromkeys(KEPT, ""), "step1": "step0", "step2": "step0"}
    partial = dict(zip(KEPT, ds["partial_duplicate_of"].values, strict=True))
    assert partial == {**dict.fromkeys(KEPT, ""), "step8": "step16"}
    assert str(ds["partial_duplicate_tensors"].sel(step="step8").values) == EMBED
    # the distances are those of a float64 computation from the files
    weights = {label: numpy_weights(run / "run" / label) for label in KEPT}
    names = list(weights["step0"])  # every tensor the files store (no buffer is saved)
    for i, label in enumerate(KEPT):
        expect_first, cos = reference(weights[label], weights["step0"], names)
        assert float(ds["distance_to_first"][i]) == pytest.approx(expect_first, rel=1e-9, abs=0)
        assert float(ds["cosine_to_first"][i]) == pytest.approx(cos, rel=1e-9)
        expect_last, _ = reference(weights[label], weights["step16"], names)
        assert float(ds["distance_to_last"][i]) == pytest.approx(expect_last, rel=1e-9, abs=0)
        if i:
            previous, _ = reference(weights[label], weights[KEPT[i - 1]], names)
            assert float(ds["distance_to_previous"][i]) == pytest.approx(previous, rel=1e-9)
    assert math.isnan(float(ds["distance_to_previous"][0]))
    # the fingerprint of each checkpoint is in its stores' and its metrics' provenance
    store = ActivationStore(kept / "results/activations/run/step8/text.zarr")
    assert store.attrs["checkpoint_fingerprint"] == str(ds["fingerprint"].sel(step="step8").values)
    aniso = read_dataset(kept / "results/metrics/anisotropy/run.nc")
    assert list(aniso["duplicate_of"].values) == list(ds["duplicate_of"].values)
    assert list(aniso["fingerprint"].values) == list(ds["fingerprint"].values)


def test_step_figures_draw_kept_duplicates_hollow(kept):
    inputs = ["results/metrics/weights/run.nc"]
    check_figure(kept, kept / "results/figures/weights/run.png", "weights_figure", inputs)
    check_figure(
        kept,
        kept / "results/figures/similarity/alpha_req/run.png",
        "alpha_req_figure",
        ["results/metrics/anisotropy/run.nc"],
    )


def test_duplicates_are_drawn_hollow_in_a_step_figure(kept):
    from repgeom.plots.similarity import alpha_req_by_step

    ds = read_dataset(kept / "results/metrics/anisotropy/run.nc")
    fig = alpha_req_by_step(ds.isel(positions=0))
    hollow = [a for ax in fig.axes for a in ax.get_lines() if a.get_gid() == "duplicates"]
    assert hollow, "no hollow markers for the kept duplicates"
    xs = sorted({float(x) for line in hollow for x in line.get_xdata()})
    assert xs == [1.0, 2.0]  # step1 and step2, on the symlog step axis
    assert all(line.get_markerfacecolor() == fig.axes[0].get_facecolor() for line in hollow)
