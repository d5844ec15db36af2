"""A run's projected cost: the jobs of Snakemake's plan, costed per stage from a calibration."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys

import pytest
import yaml

from repgeom.activations.size import ModelSize
from repgeom.runtime import format_bytes
from repgeom.workflow.calibration import (
    Calibration,
    CorpusRates,
    Peak,
    checkpoint_reads,
    forward_flops,
    heads_flops,
    measure_heads,
    shape_key,
)
from repgeom.workflow.footprint import extraction_bytes, store_bytes, weights_bytes
from repgeom.workflow.projection import (
    COSTS,
    ORDER,
    TARGETS,
    Costing,
    PlannedJob,
    StageCost,
    evaluations,
    parse_dry_run,
    project,
    report,
    rule_cost,
    wall,
)
from repgeom.workflow.studies import registry
from tests.workflow import ROOT

MB = 2**20

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
    store = "results/activations/m/step8/docs.zarr"
    assert jobs == [
        PlannedJob(
            "extract", {"model": "m", "step": "step8", "corpus": "docs"}, 1, 6000,
            ("results/tokens/bpe/docs.zarr",), (store,),
        ),
        PlannedJob(
            "geometry", {"model": "m", "step": "step8", "corpus": "docs"}, 2, 4000, (store,)
        ),
        PlannedJob("all", {}, 1, 0, ("x",)),
    ]  # fmt: skip
    stages = [rule_cost(r).stage for r in ("extract", "train_decoder", "gather_metric", "corpus")]
    assert stages == ["extraction", "training", "gathering", "corpora"]
    assert rule_cost("shape_of_learning_figure").stage == "figures and tables"
    assert rule_cost("download_enwik8") is COSTS["download"]
    assert rule_cost("train_tokenizer") is COSTS["train_tokenizer"]  # not a model's training


def rules_defined() -> set[str]:
    """Every rule the Snakefile and rules/*.smk define: ``rule NAME:``, and the rules made one
    per model or corpus (``name: f"train_{_name}"``) as their prefix."""
    names = set()
    for path in [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))]:
        text = path.read_text()
        names |= set(re.findall(r"^(?:local)?rule (\w+):", text, re.M))
        names |= {f"{p}*" for p in re.findall(r"name:\s*f\"(\w+_)\{", text)}
    return names


def test_every_rule_has_a_cost_function():
    """Every rule defined is a target (no job) or has an entry in the registry, whose stage is
    one of ORDER's; a rule without one stops the projection naming it."""
    defined = rules_defined()
    assert {"corpus", "extract", "birth_variant", "train_*", "download_*"} <= defined
    assert TARGETS == {"all", "spine", *(s.name for s in registry())}
    for rule in sorted(defined - TARGETS):
        entry = rule_cost(rule.replace("*", "x"))
        assert entry.stage in ORDER, rule
    assert {r for r in defined if not r.endswith("*")} - TARGETS <= set(COSTS)
    assert all(entry.stage in ORDER for entry in COSTS.values())
    with pytest.raises(KeyError, match="'new_rule'"):
        rule_cost("new_rule")
    with pytest.raises(KeyError, match="'new_rule'"):
        project({}, [PlannedJob("new_rule", {})], Calibration(startup_s=1.0), {}, {})


TRAINING = {
    "steps": 100, "batch_size": 4, "checkpoints": [0, 2, 4, 100], "n_linear_checkpoints": 2,
    "device": "cpu",
}  # fmt: skip


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
        "models": {"m": {"tokenizer": "t", "training": TRAINING}},
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
        light_startup_s=1.0,
        read_s_per_file=0.25,
        training_s={"m": (0.1, 2.0, 0.5)},
    )
    gathered = ("results/metrics/anisotropy/m/s/docs.nc", "results/weights/m/integrity.nc")
    jobs = [
        PlannedJob("extract", {"model": "m", "step": "s", "corpus": "docs"}),
        PlannedJob("extract", {"model": "m", "step": "s", "corpus": "random"}),
        PlannedJob("geometry", {"model": "m", "step": "s", "corpus": "docs"}),
        PlannedJob("similarity", {"model": "m", "step": "s", "corpus": "docs"}),
        PlannedJob("gather_metric", {"model": "m", "metric": "anisotropy"}, inputs=gathered),
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
    # training: start-up, building the model, 100 steps, 4 checkpoints (0, 2, 4, 100), 2 threads
    assert stages["training"].job_seconds == pytest.approx(2 * (3 + 0.5 + 100 * 0.1 + 4 * 2.0))
    assert stages["training"].disk_bytes == 4 * weights_bytes(size)
    # a gather: start-up without torch, each of its 2 inputs read
    assert stages["gathering"].job_seconds == pytest.approx(1 + 2 * 0.25)
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


SMALL = ModelSize(
    n_params=10_000, n_layers=3, hidden_size=8, n_heads=2, intermediate_size=32, vocab_size=50
)


def one_job(costing: Costing, job: PlannedJob):
    """The cost of one job by its rule's entry in the registry."""
    return rule_cost(job.rule).cost(costing, job)


def test_birth_cost_is_iterations_and_evaluations_at_the_measured_rates():
    config = {
        "birth": {
            "device": "cpu",
            "common": {"n_iterations": 30, "eval_every": 10},
            "variants": {"a": {}, "b": {"n_iterations": 25, "arch": "full", "n_layers": 1}},
        }
    }
    cal = Calibration(
        startup_s=3.0,
        birth_s={"a": (0.2, 0.5, 1000), "b": (0.1, 0.3, 2000)},
        peaks={("birth", "a"): Peak(300 * MB, 520 * MB)},
    )
    costing = Costing(config, cal, {})
    # a: 30 iterations, evaluated at 0, 10, 20, 30; b: 25, at 0, 10, 20 and the last
    assert evaluations(30, 10) == 4 and evaluations(25, 10) == 4
    a = one_job(costing, PlannedJob("birth_variant", {"variant": "a"}, mem_mb=4000))
    assert a.seconds == pytest.approx(3 + 30 * 0.2 + 4 * 0.5) == a.gpu_seconds
    assert a.mem_bytes == 520 * MB  # the peak of its calibration, not the 4000 MB reserved
    b = one_job(costing, PlannedJob("birth_variant", {"variant": "b"}))
    assert b.seconds == pytest.approx(3 + 25 * 0.1 + 4 * 0.3)
    assert b.mem_bytes == 0  # not measured: not projected
    assert rule_cost("birth_variant").stage == "Birth"
    on_gpu = Costing({"birth": {**config["birth"], "device": "auto"}}, cal, {}, gpu_flops=1e9)
    # the schema's defaults: batch 32 × 256 positions, d_model 64 (a's simplified 2 layers)
    flops = 6 * 32 * 256 * (1000 + 2 * 256 * 64)
    gpu = one_job(on_gpu, PlannedJob("birth_variant", {"variant": "a"})).gpu_seconds
    assert gpu == pytest.approx(3 + (30 + 4) * flops / 1e9)


def test_training_cost_on_a_gpu_runs_its_steps_at_the_gpu_rate():
    config = {
        "tokenizers": {"t": {"window": 16}},
        "models": {"m": {"tokenizer": "t", "training": {**TRAINING, "device": "auto"}}},
    }
    cal = Calibration(startup_s=3.0, training_s={"m": (0.1, 2.0, 0.5)})
    cost = one_job(Costing(config, cal, {"m": SMALL}, gpu_flops=1e9), PlannedJob("train_m", {}))
    assert cost.seconds == pytest.approx(3 + 0.5 + 100 * 0.1 + 4 * 2.0)
    tokens = 100 * 4 * 16
    assert cost.gpu_seconds == pytest.approx(
        3 + 0.5 + 3 * tokens * forward_flops(SMALL, 16) / 1e9 + 4 * 2.0
    )


def test_checkpoint_weights_costs_are_bytes_at_the_measured_rates():
    cal = Calibration(
        startup_s=3.0, light_startup_s=1.0, hash_s_per_byte=1e-6, distance_s_per_byte=2e-6,
        read_s_per_file=0.1,
    )  # fmt: skip
    costing = Costing({}, cal, {"m": SMALL})
    stored = weights_bytes(SMALL)  # float32: 40 kB
    fp = one_job(costing, PlannedJob("fingerprint", {"model": "m", "step": "s"}))
    assert fp.seconds == pytest.approx(1 + stored * 1e-6)
    prints = tuple(f"results/weights/m/step{i}.json" for i in range(5))
    checkpoints = tuple(f"results/models/m/step{i}" for i in range(5))
    inputs = ("results/weights/m/integrity.nc", *prints, *checkpoints)
    w = one_job(costing, PlannedJob("weights", {"model": "m"}, inputs=inputs))
    # each checkpoint read once, and the reference of each compared pair once more
    # (to the first, previous, last and the one before: with 5, each of the 10 pairs)
    assert checkpoint_reads(5) == 5 + 10 and checkpoint_reads(8) == 8 + 22
    assert w.seconds == pytest.approx(1 + 15 * stored * 2e-6)
    gate = one_job(costing, PlannedJob("integrity", {"model": "m"}, inputs=prints))
    assert gate.seconds == pytest.approx(1 + 5 * 0.1)
    assert {rule_cost(r).stage for r in ("fingerprint", "integrity", "weights")} == {
        "checkpoint weights"
    }


def test_corpus_tokens_and_ngram_costs_from_the_corpus_rates():
    config = {
        "corpora": {"docs": {"kind": "python_docs", "eval_fraction": 0.25}},
        "tokenizers": {"bpe": {"kind": "train", "corpus": "docs", "window": 16}},
        "bottleneck": {"ngram": {"max_tokens": None}},
    }
    rates = CorpusRates(
        chars=1e6, read_s_per_char=1e-6, bpe_s_per_char=2e-6, encode_s_per_char=3e-6,
        tokens_per_char=0.25,
    )  # fmt: skip
    cal = Calibration(
        startup_s=3.0, light_startup_s=1.0, corpora={"docs": rates},
        ngram_s={("bpe", "docs"): (0.5, 1e-5)},
    )  # fmt: skip
    costing = Costing(config, cal, {})
    assert one_job(costing, PlannedJob("corpus", {"corpus": "docs"})).seconds == 1 + 1.0
    tokenizer = one_job(costing, PlannedJob("train_tokenizer", {"tokenizer": "bpe"}))
    assert tokenizer.seconds == pytest.approx(3 + 0.75e6 * 2e-6)  # its train split
    tokens = one_job(costing, PlannedJob("tokens", {"tokenizer": "bpe", "corpus": "docs"}))
    assert tokens.seconds == pytest.approx(3 + 1e6 * 3e-6)  # both splits
    job = PlannedJob("bottleneck_ngram", {"tokenizer": "bpe", "corpus": "docs"})
    # the train split: 750k characters, 187.5k tokens
    assert one_job(costing, job).seconds == pytest.approx(1 + 0.5 + 187_500 * 1e-5)
    capped = Costing({**config, "bottleneck": {"ngram": {"max_tokens": 1000}}}, cal, {})
    assert one_job(capped, job).seconds == pytest.approx(1 + 0.5 + 1000 * 1e-5)
    # random tokens: drawn, no text; a corpus not on disk before the run: its start-up
    random = PlannedJob("tokens", {"tokenizer": "bpe", "corpus": "random"})
    assert one_job(costing, random).seconds == 3.0
    assert one_job(costing, PlannedJob("download_x", {})).seconds == 1.0


def test_lm_head_languages_figures_and_manifest_costs():
    config = {
        "corpora": {
            "docs": {"kind": "text"},
            "s-Latn": {"kind": "aligned", "windows": "document", "n_sentences": 40},
        },
        "tokenizers": {"t": {"window": 16}},
        "models": {"m": {"tokenizer": "t"}},
        "extraction": {"max_tokens": 1000, "max_sentences": 64, "dtype": "float32",
                       "batch_size": 4},
        "languages": {"grammaticality": ["pairs"]},
    }  # fmt: skip
    key = shape_key(SMALL, False)
    cal = Calibration(
        startup_s=3.0, light_startup_s=1.0, load_s={key: 2.0}, extract_s_per_token={key: 0.01},
        forward_s_per_token={key: 0.004}, lm_head_s={(50, 8): 0.7},
        languages_s={(8, 40, 40 * 32): (0.5, 2.0)}, plot_import_s=1.5, figure_s=0.4,
        read_s_per_file=0.1, hash_s_per_byte=1e-6,
    )  # fmt: skip
    jobs = [PlannedJob("extract", {"model": "m", "step": "s", "corpus": "docs"})]
    costing = Costing(config, cal, {"m": SMALL}, {("m", "docs"): (False, None)}, jobs=jobs)
    lm = one_job(costing, PlannedJob("bottleneck_lm_head", {"model": "m", "step": "s"}))
    assert lm.seconds == pytest.approx(3 + 2.0 + 0.7)
    stores = tuple(f"results/activations/m/s/{c}.zarr" for c in ("a", "b", "c", "d", "e"))
    job = PlannedJob("languages_metrics", {"model": "m", "step": "s"}, inputs=stores)
    # 4 layers (3 and the embeddings) × (5 stores × 0.5 s + 1 pair set × 2 s)
    assert one_job(costing, job).seconds == pytest.approx(1 + 4 * (5 * 0.5 + 2.0))
    outputs = ("f/a.png", "f/a.pdf", "f/b.png", "f/b.pdf", "t/x.csv")
    fig = PlannedJob("bottleneck_figures", {}, inputs=("a.nc", "b.nc", "c.nc"), outputs=outputs)
    assert one_job(costing, fig).seconds == pytest.approx(1 + 1.5 + 3 * 0.1 + 2 * 0.4)
    manifest = one_job(costing, PlannedJob("manifest", {}))
    assert manifest.seconds == pytest.approx(1 + store_bytes(SMALL, 1000, 62) * 1e-6)


def test_projected_peak_memory_is_reported_beside_the_reservation():
    """A job's projected peak memory comes from its rule's memory model (extraction: its
    footprint on the measured start-up) or its calibration's measured peak (with the model's
    weights where the job loads one and the calibration did not, and the start-up of the
    job's own kind where it differs); unmeasured jobs are not projected. The table prints it
    beside the largest mem_mb reserved, each labelled, and '–' where there is none."""
    config = {
        "corpora": {"docs": {"kind": "text"}},
        "tokenizers": {"t": {"window": 16, "corpus": "docs"}},
        "models": {"m": {"tokenizer": "t"}},
        "extraction": {"max_tokens": 1000, "max_sentences": 64, "dtype": "float32",
                       "batch_size": 4},
    }  # fmt: skip
    key = shape_key(SMALL, False)
    cal = Calibration(
        startup_s=3.0, light_startup_s=1.0, extract_s_per_token={key: 0.01},
        forward_s_per_token={key: 0.004}, load_s={key: 2.0},
        geometry_s_per_layer={(8, 1000): 0.5}, lm_head_s={(50, 8): 0.7},
        startup_rss=330 * MB, model_startup_rss=440 * MB, light_startup_rss=120 * MB,
        figure_rss=180 * MB,
        peaks={
            ("geometry", (8, 1000)): Peak(120 * MB, 420 * MB),
            ("lm_head", (50, 8)): Peak(130 * MB, 150 * MB),
            ("tokens", "docs"): Peak(340 * MB, 360 * MB),
        },
    )  # fmt: skip
    costing = Costing(config, cal, {"m": SMALL}, {("m", "docs"): (False, None)})
    w = {"model": "m", "step": "s", "corpus": "docs"}
    extract = one_job(costing, PlannedJob("extract", w, mem_mb=2000))
    assert extract.mem_bytes == extraction_bytes(SMALL, "float32", 4, 16, False, False, 440 * MB)
    geometry = one_job(costing, PlannedJob("geometry", w, mem_mb=4000))
    assert geometry.mem_bytes == 420 * MB  # its calibration's peak, not the 4000 MB reserved
    lm = one_job(costing, PlannedJob("bottleneck_lm_head", {"model": "m", "step": "s"}))
    # a checkpoint-loading start-up, what the spectrum allocated, the model loaded in float32
    assert lm.mem_bytes == 440 * MB + 20 * MB + weights_bytes(SMALL, "float32")
    tokens = one_job(costing, PlannedJob("tokens", {"tokenizer": "t", "corpus": "docs"}))
    assert tokens.mem_bytes == 360 * MB
    bpe = one_job(costing, PlannedJob("train_tokenizer", {"tokenizer": "t"}))
    assert bpe.mem_bytes == 120 * MB + 20 * MB  # without torch: what the tokenization allocated
    assert one_job(costing, PlannedJob("download_x", {})).mem_bytes == 120 * MB
    figure = PlannedJob("weights_figure", {"model": "m"}, outputs=("a.png",), mem_mb=1000)
    assert one_job(costing, figure).mem_bytes == 180 * MB
    similarity = PlannedJob("similarity", w, mem_mb=4000)
    cal.similarity_s[(8, 4, 1000)] = 1.0
    assert one_job(costing, similarity).mem_bytes == 0  # not measured: not projected
    jobs = [
        PlannedJob("extract", w, mem_mb=2000),
        PlannedJob("extract", {**w, "step": "t"}, mem_mb=6000),
        PlannedJob("geometry", w, mem_mb=4000),
        similarity,
    ]
    stages = project(config, jobs, cal, {"m": SMALL}, {("m", "docs"): (False, None)})
    assert stages["extraction"].mem_bytes == extract.mem_bytes
    assert stages["extraction"].reserved_bytes == 6000 * MB
    table = report(stages, 2, 0, "assumed")
    header = table.splitlines()[0]
    assert "projected peak memory per job" in header and "reserved per job (mem_mb)" in header
    row = next(line for line in table.splitlines() if line.startswith("| extraction |"))
    assert f"| {format_bytes(extract.mem_bytes)} | {format_bytes(6000 * MB)} |" in row
    row = next(line for line in table.splitlines() if line.startswith("| similarity |"))
    assert f"| – | {format_bytes(4000 * MB)} |" in row


def test_peaks_scaled_and_extrapolated_to_a_job_size():
    peak = Peak(before=100, peak=160)
    assert peak.scaled(3.0) == Peak(100, 280) and peak.above(40) == 100
    # 30 beyond its imports at size 1, 60 at size 2: linear, 150 at size 5
    assert Peak(100, 160).extrapolated(Peak(90, 120), (1, 2), 5) == Peak(100, 250)
    # 40 at size 1, 80 at size 4: as the square root of the size, 160 at size 16
    assert Peak(100, 180).extrapolated(Peak(90, 130), (1, 4), 16) == Peak(100, 260)
    # never faster than linear, never decreasing, never below the larger measurement
    assert Peak(100, 200).extrapolated(Peak(90, 100), (1, 2), 4) == Peak(100, 300)
    assert Peak(100, 160).extrapolated(Peak(90, 170), (1, 2), 5) == Peak(100, 160)
    assert Peak(100, 160).extrapolated(Peak(90, 120), (1, 2), 1) == Peak(100, 160)


# touch 200 MB (the work of a fresh process in the test below)
ALLOCATE = "block = bytearray(200 * 2**20)\nblock[::4096] = b'\\x01' * (200 * 2**20 // 4096)"


def test_a_fresh_process_measures_its_own_peak():
    """The measurement's process reports its own peak (not the memory of the process that
    started it) and what the call allocated beyond its imports."""
    from repgeom.workflow.calibration import in_fresh_process, peak_rss

    held = bytearray(400 * MB)  # the parent holds 400 MB while the child runs
    held[::4096] = b"\x01" * (400 * MB // 4096)
    result, peak = in_fresh_process(exec, ALLOCATE, warm=("numpy",))
    assert result is None
    assert 200 * MB <= peak.peak - peak.before < 260 * MB
    assert peak.peak < 400 * MB < peak_rss()  # its own, not the parent's
    with pytest.raises(RuntimeError, match="calibrating exec failed:(.|\n)*ValueError: no"):
        in_fresh_process(exec, "raise ValueError('no')")


BAR = re.compile(r"\r|it/s|%\|")


def test_no_progress_bars_without_a_terminal(capfd, tmp_path):
    """As the calibration runs (its output not a terminal): no bar from the extraction, from
    transformers saving and loading a model, or from a process it starts; the same calls
    print bars outside it."""
    import transformers

    from repgeom.workflow.calibration import measure_extraction, no_progress_bars

    cfg = transformers.GPTNeoXConfig(
        vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=16, architectures=["GPTNeoXForCausalLM"],
    )  # fmt: skip

    def run() -> str:
        measure_extraction(cfg, 16, False, n=(1, 2), min_seconds=0.0)
        model = transformers.GPTNeoXForCausalLM(cfg)
        model.save_pretrained(tmp_path / "m")
        transformers.GPTNeoXForCausalLM.from_pretrained(tmp_path / "m")
        bar = "from tqdm import tqdm\nfor _ in tqdm(range(3)): pass"
        subprocess.run([sys.executable, "-c", bar], check=True)
        out, err = capfd.readouterr()
        return out + err

    assert not sys.stdout.isatty()
    shown = run()
    assert "extract:" in shown and "Writing model shards" in shown and BAR.search(shown)
    with no_progress_bars(not sys.stdout.isatty()):
        quiet = run()
    assert not BAR.search(quiet), quiet[-500:]
    assert BAR.search(run())  # restored after


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


def test_training_and_birth_calibrations_time_the_real_loops(monkeypatch):
    """The training calibration runs the real training loop at the model's shape: a first
    update, then the two step counts with one checkpoint and the first with two; Birth's runs
    the real training of the variant at its two iteration counts and the first evaluated at
    every one, its batches capped at 32 sequences (and scaled back)."""
    import transformers

    from repgeom.activations import training as T
    from repgeom.birth import train as B
    from repgeom.workflow.calibration import measure_birth, measure_training

    seen, real_train, real_birth = [], T.train, B.train_on_language

    def spy_train(model, train_w, eval_w, ids, cfg, save, device):
        seen.append(("train", cfg.steps, tuple(cfg.saved_steps), train_w.ids.shape[1]))
        return real_train(model, train_w, eval_w, ids, cfg, save, device)

    def spy_birth(language, cfg, device):
        seen.append(("birth", cfg.n_iterations, cfg.eval_every, cfg.batch_size))
        return real_birth(language, cfg, device)

    monkeypatch.setattr(T, "train", spy_train)
    monkeypatch.setattr(B, "train_on_language", spy_birth)
    cfg = transformers.GPTNeoXConfig(
        vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=16, architectures=["GPTNeoXForCausalLM"],
    )  # fmt: skip
    training = {**TRAINING, "batch_size": 2, "lr": 1e-3, "min_lr_ratio": 0.1, "warmup": 1,
                "weight_decay": 0.0, "grad_clip": 1.0, "mask_prob": 0.15, "eval_tokens": 64,
                "seed": 0, "threads": 1}  # fmt: skip
    step, checkpoint, build = measure_training(cfg, training, 16, steps=(2, 4), repeats=1)
    assert step > 0 and checkpoint >= 0 and build >= 0
    assert seen == [("train", n, saved, 16) for n, saved in ((1, (1,)), (2, (2,)), (4, (4,)),
                                                              (2, (0, 2)))]  # fmt: skip
    seen.clear()
    settings = {"d_model": 16, "seq_len": 16, "n_vocab": 20, "batch_size": 64, "eval_batch_size": 8}
    from repgeom.birth.config import BirthConfig
    from repgeom.workflow.config import options

    resolved = dataclasses.asdict(options(BirthConfig, "birth.$defs.variant", settings))
    per_iteration, per_evaluation, params = measure_birth(resolved, (2, 4), repeats=1)
    assert per_iteration > 0 and per_evaluation >= 0 and params > 0
    assert seen == [("birth", 2, 2, 32), ("birth", 4, 4, 32), ("birth", 2, 1, 32)]


def test_corpus_calibration_on_a_sample_of_its_text(tmp_path):
    """A text corpus on disk is sampled (its first 256 kB: here all of it), read, a BPE trained
    and the text tokenized; the n-gram W-error is timed on the sample's tokens. A corpus only
    read gets no tokenization; one not on disk yet, nothing."""
    from repgeom.workflow.calibration import corpus_sample, measure_corpus, measure_ngram

    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    text = "\n\n".join(" ".join(words[(i * j) % 8] for j in range(40)) for i in range(60))
    (tmp_path / "c.txt").write_text(text)
    spec = {"kind": "text", "path": str(tmp_path / "c.txt"), "split_by": "paragraph"}
    docs, read, scale = corpus_sample(spec)
    assert len(docs) == 60 and scale == pytest.approx(1.0) and read >= 0
    rates, ids = measure_corpus(docs, read, scale, 300)
    assert rates.chars == sum(len(d) for d in docs)
    assert 0 < rates.tokens_per_char < 1 and rates.encode_s_per_char > 0 and len(ids) > 64
    fixed, per_token = measure_ngram(ids, 300, {"k": 4, "min_count": 1, "max_tokens": None,
                                                "n": 3, "method": "auto", "seed": 0})  # fmt: skip
    assert fixed >= 0 and per_token > 0
    read_only, none = measure_corpus(docs, read, scale, 0)
    assert none is None and read_only.chars == rates.chars and read_only.tokens_per_char == 0
    assert corpus_sample({**spec, "path": str(tmp_path / "absent.txt")}) == ([], 0.0, 0.0)


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
    assert out["stages"]["similarity"]["job_seconds"] > 0
    heads = out["stages"]["rank-restricted heads"]  # the decoder's last checkpoint
    assert heads["jobs"] == 1 and heads["job_seconds"] > 0
    # every stage costed beyond its start-up: training by its measured steps, and so on
    startup = out["calibration"]["startup_s"]
    training = out["stages"]["training"]
    assert training["jobs"] == 1 and training["job_seconds"] > startup
    assert out["calibration"]["training_s"]["decoder"][0] > 0 and "training decoder" in res.stdout
    assert list(out["stages"]) == [s for s in ORDER if s in out["stages"]]
    assert "start-up only" not in res.stdout
    assert heads["temp_bytes"] > 0 and "heads V=" in res.stdout
    assert out["wall_s"] > 0 and "projected wall time on this machine" in res.stdout
    assert not (tmp_path / "results").exists()  # a projection runs no job
    # memory: each stage's projected peak (start-up and work, measured), and apart from it what
    # Snakemake reserves; no progress bar in the output (it is not a terminal)
    assert "| projected peak memory per job | reserved per job (mem_mb) |" in res.stdout
    light = out["calibration"]["light_startup_rss"]
    for name, stage in out["stages"].items():
        assert stage["mem_bytes"] >= light and stage["reserved_bytes"] > 0, name
    assert out["stages"]["extraction"]["mem_bytes"] > out["calibration"]["model_startup_rss"]
    assert not BAR.search(res.stdout + res.stderr), (res.stdout + res.stderr)[-2000:]
