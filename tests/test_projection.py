"""A run's projected cost: the jobs of Snakemake's plan, costed per stage from a calibration."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from repgeom.activations.size import ModelSize
from repgeom.runtime import format_bytes
from repgeom.workflow.calibration import (
    Calibration,
    forward_flops,
    heads_flops,
    measure_heads,
    shape_key,
)
from repgeom.workflow.footprint import store_bytes
from repgeom.workflow.projection import (
    PlannedJob,
    StageCost,
    parse_dry_run,
    project,
    report,
    stage_of,
    wall,
)
from tests.workflow import ROOT

DRY_RUN = """
Building DAG of jobs...
rule extract:
    input: results/tokens/bpe/docs.zarr
    output: results/activations/m/step8/docs.zarr
    jobid: 4
    wildcards: model=m, step=step8, corpus=docs
    resources: tmpdir=/tmp, gpu=0, mem_mb=6000, mem=6 GB, mem_mib=5723
[Fri Dec  4 20:18:53 2026]
localrule geometry:
    input: results/activations/m/step8/docs.zarr
    wildcards: model=m, step=step8, corpus=docs
    threads: 2
    resources: tmpdir=/tmp, mem_mb=4000
rule all:
    input: x
    jobid: 0
"""


def test_dry_run_parsed_into_jobs():
    jobs = parse_dry_run(DRY_RUN)
    assert jobs == [
        PlannedJob("extract", {"model": "m", "step": "step8", "corpus": "docs"}, 1, 6000),
        PlannedJob("geometry", {"model": "m", "step": "step8", "corpus": "docs"}, 2, 4000),
        PlannedJob("all", {}, 1, 0),
    ]
    assert [stage_of(r) for r in ("extract", "train_decoder", "gather_metric", "corpus")] == [
        "extraction",
        "training",
        "gathering",
        "corpora",
    ]
    assert stage_of("shape_of_learning_figure") == "figures and tables"


def test_stage_costs_and_wall_time():
    size = ModelSize(
        n_params=10_000, n_layers=3, hidden_size=8, n_heads=2, intermediate_size=32, vocab_size=50
    )
    config = {
        "corpora": {
            "docs": {"kind": "text"},
            "random": {"kind": "random_tokens", "n_sequences": 2},
        },
        "tokenizers": {"t": {"window": 16}},
        "models": {"m": {"tokenizer": "t"}},
        "extraction": {
            "max_tokens": 1000,
            "max_sentences": 10,
            "dtype": "float32",
            "batch_size": 4,
        },
    }
    key = shape_key(size, True)
    cal = Calibration(
        startup_s=3.0,
        extract_s_per_token={key: 0.01},
        forward_s_per_token={key: 0.004},
        load_s={key: 2.0},
        lens_s_per_token={key: 0.05},
        geometry_s_per_layer={(8, 1000): 0.5, (8, 32): 0.1},
        similarity_s={(8, 4, 1000): 1.5},
    )
    jobs = [
        PlannedJob("extract", {"model": "m", "step": "s", "corpus": "docs"}),
        PlannedJob("extract", {"model": "m", "step": "s", "corpus": "random"}),
        PlannedJob("geometry", {"model": "m", "step": "s", "corpus": "docs"}),
        PlannedJob("similarity", {"model": "m", "step": "s", "corpus": "docs"}),
        PlannedJob("gather_metric", {"model": "m", "metric": "anisotropy"}),
        PlannedJob("train_m", {}, threads=2),
    ]
    flags = {("m", "docs"): (True, 100), ("m", "random"): (True, None)}
    stages = project(config, jobs, cal, {"m": size}, flags, gpu_flops=1e6)
    assert list(stages) == ["training", "extraction", "geometry", "similarity", "gathering"]
    ext = stages["extraction"]
    # start-up + building the model + tokens × seconds per token (+ the lens on its budget of
    # 100 positions, on docs); random: 2 windows of 16, no lens
    assert ext.job_seconds == pytest.approx(
        (3 + 2 + 1000 * 0.01 + 100 * 0.05) + (3 + 2 + 32 * 0.01)
    )
    assert ext.longest == pytest.approx(20.0)
    assert ext.disk_bytes == store_bytes(size, 1000, 1000 // 16) + store_bytes(size, 32, 2)
    gpu = 3 + 2 + 1000 * (0.01 - 0.004) + 1000 * forward_flops(size, 16) / 1e6 + 100 * 0.05
    assert ext.gpu_longest == pytest.approx(gpu)
    assert stages["geometry"].job_seconds == pytest.approx(3 + 4 * 0.5)  # 3 layers + embeddings
    # similarity: start-up + its measured job on (hidden 8, 4 layers, 1000 tokens)
    assert stages["similarity"].job_seconds == pytest.approx(3 + 1.5)
    assert not stages["similarity"].unmodelled
    assert stages["training"].job_seconds == 6.0 and stages["training"].unmodelled == {"train_m"}
    # stages one after the other: each its job-seconds over the cores, or its longest job
    expected = sum(max(s.job_seconds / 2, s.longest) for s in stages.values())
    assert wall(stages, cores=2) == pytest.approx(expected)
    assert wall({"x": StageCost(jobs=4, job_seconds=40.0, longest=10.0)}, cores=2) == 20.0
    assert wall({"x": StageCost(jobs=1, job_seconds=40.0, longest=40.0)}, cores=8) == 40.0


def test_heads_job_is_its_feature_pass_training_and_evaluation():
    size = ModelSize(
        n_params=10_000, n_layers=3, hidden_size=8, n_heads=2, intermediate_size=32, vocab_size=50
    )
    config = {
        "corpora": {"docs": {"kind": "text"}},
        "tokenizers": {"t": {"window": 16}},
        "models": {"m": {"tokenizer": "t"}},
        "extraction": {"max_tokens": 300, "max_sentences": 10, "dtype": "float32"},
        "bottleneck": {"heads": {"token_budget": 1000, "batch_size": 64, "ranks": [2, 4]}},
    }
    key = shape_key(size, True)
    cal = Calibration(
        startup_s=3.0,
        forward_s_per_token={key: 0.004},
        load_s={key: 2.0},
        heads_s={(50, 8): (0.002, 0.5)},
    )
    jobs = [PlannedJob("bottleneck_heads", {"model": "m", "step": "s"}, threads=1)]
    stages = project(config, jobs, cal, {"m": size}, {}, gpu_flops=1e6, heads_corpus="docs")
    heads = stages["rank-restricted heads"]
    # start-up, the model, the forward of 1000 tokens, training (1000 tokens, 16 updates of 64),
    # evaluation on the 300-token eval store at a third of a training token
    assert heads.job_seconds == pytest.approx(
        3 + 2 + 1000 * 0.004 + 1000 * 0.002 + 16 * 0.5 + 300 * 0.002 / 3
    )
    assert not heads.unmodelled
    # the temporary store of the features: one layer of 1000 tokens in 62 windows of 16
    assert heads.temp_bytes == store_bytes(size, 1000, 1000 // 16, layers=1)
    assert heads.disk_bytes == 0  # deleted when the job ends
    assert list(stages) == ["rank-restricted heads"]
    assert "| rank-restricted heads | 1 |" in report(stages, 2, 0, "assumed")
    assert f"{format_bytes(heads.temp_bytes)} temporary per job" in report(stages, 2, 0, "")
    assert store_bytes(size, 1000, 62, layers=1) == 8 * (2 * 1000 + 4 * 62) + 24 * 1000
    flops = 1000 * forward_flops(size, 16) + (1000 + 100) * heads_flops(50, 8, [2, 4])
    assert heads.gpu_longest == pytest.approx(3 + 2 + flops / 1e6)
    # forward and backward of each head's multiply-adds: rank r is d·r + r·V, the full one d·V
    assert heads_flops(50, 8, [2, 4]) == 6 * (2 * 58 + 4 * 58 + 8 * 50)


def test_heads_calibration_trains_the_configured_grid(monkeypatch):
    """The calibration times the real training of the config's ranks and the full head, with
    batches of the two sizes it fits (the larger capped by the config's batch size)."""
    from repgeom.bottleneck import heads as H

    seen = []
    real = H.train_heads

    def spy(heads, full, batches, cfg, device):
        seen.append((sorted(heads), tuple(full.factors[0].shape), cfg.batch_size, cfg.token_budget))
        return real(heads, full, batches, cfg, device)

    monkeypatch.setattr(H, "train_heads", spy)
    from repgeom.workflow.config import load_config, load_config_file

    test = load_config(load_config_file(ROOT / "config" / "test.yaml"), ROOT / "config/schema.yaml")
    options = {**test["bottleneck"]["heads"], "ranks": [1, 2], "batch_size": 32}
    per_token, per_update = measure_heads(40, 4, options)
    assert per_token > 0 and per_update >= 0
    assert seen == [
        ([1, 2], (40, 4), 8, 8),
        ([1, 2], (40, 4), 8, 24),
        ([1, 2], (40, 4), 32, 32),
        ([1, 2], (40, 4), 32, 96),
    ]


@pytest.mark.slow
def test_footprint_command_projects_a_config(tmp_path):
    cfg = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
    cfg["models"] = {"decoder": cfg["models"]["decoder"]}
    cfg["corpora"] = {"docs": cfg["corpora"]["docs"]}
    for key in ("languages", "birth"):
        cfg.pop(key)
    cfg["bottleneck"] = {"heads": cfg["bottleneck"]["heads"], "ngram": {"corpora": []}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = subprocess.run(
        [sys.executable, "-m", "repgeom.workflow.footprint", str(path), "--directory",
         str(tmp_path), "--cores", "2", "--json", str(tmp_path / "p.json")],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads((tmp_path / "p.json").read_text())
    assert out["stages"]["extraction"]["jobs"] == 3  # steps 0, 4, 8 of the decoder on docs
    assert out["stages"]["geometry"]["jobs"] == 3
    assert out["stages"]["similarity"]["jobs"] == 3
    assert (
        out["stages"]["similarity"]["job_seconds"] > 0
        and not out["stages"]["similarity"]["unmodelled"]
    )
    heads = out["stages"]["rank-restricted heads"]  # the decoder's last checkpoint
    assert heads["jobs"] == 1 and heads["job_seconds"] > 0 and not heads["unmodelled"]
    assert heads["temp_bytes"] > 0 and "heads V=" in res.stdout
    assert out["wall_s"] > 0 and "projected wall time on this machine" in res.stdout
    assert not (tmp_path / "results").exists()  # a projection runs no job
