"""A run's cost before it starts: jobs, disk, memory and wall time per stage, projected from
Snakemake's own plan and a short calibration on this machine.

- The jobs are those of ``snakemake -n`` (the workflow's static DAG) for the config.
- Each model's shape and this machine's speeds come from :mod:`repgeom.workflow.calibration`
  (its checkpoint, published dims or trained config; start-up, extraction per token with and
  without the eval loss and logit lens, geometry per layer, similarity per store, the heads'
  training per token and per update).
- A rank-restricted heads job is its feature pass (the bare forward of ``token_budget`` tokens)
  plus the heads' training, plus their evaluation on the eval store (counted as a third of
  training per token: a forward without the backward); its disk is the temporary store of the
  features (deleted when the job ends).
- Wall time assumes stages one after the other: each stage takes its total job-seconds over
  the cores, or its longest job if that is longer. Jobs of rules without a cost model here
  (training, Birth, n-grams, the LM-head spectrum, languages metrics) are counted at their
  start-up and named.
- On a GPU, the extraction's forward and the heads' feature pass and training run at an assumed
  rate (:data:`GPU_FLOPS`) unless a measured one is given; writing a store stays what it costs
  here.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from repgeom.activations.size import ModelSize
from repgeom.runtime import format_bytes
from repgeom.workflow.calibration import (
    Calibration,
    forward_flops,
    heads_flops,
    measure_extraction,
    measure_geometry,
    measure_heads,
    measure_similarity,
    measure_startup,
    model_size,
    shape_key,
    transformers_config,
)
from repgeom.workflow.footprint import (
    extraction_bytes,
    store_bytes,
    weights_bytes,
)

# effective FLOP/s of a transformer forward on one GPU when none was measured: 30 % of an
# H100's dense bf16 peak (989 TFLOP/s), a usual utilisation for batch 8 × 512 inference
GPU_FLOPS = 3e14
STAGES = {
    "corpus": "corpora",
    "languages_corpus": "corpora",
    "download": "corpora",
    "train_tokenizer": "tokens",
    "tokens": "tokens",
    "extract": "extraction",
    "geometry": "geometry",
    "similarity": "similarity",
    "bottleneck_heads": "rank-restricted heads",
    "release_hub_revision": "other",
    "manifest": "other",
}
ORDER = [
    "corpora",
    "tokens",
    "training",
    "extraction",
    "geometry",
    "similarity",
    "gathering",
    "rank-restricted heads",
]
TARGETS = {"all", "spine", "shape_of_learning", "bottleneck", "languages", "birth", "logit_lens"}


@dataclasses.dataclass(frozen=True)
class PlannedJob:
    """One job of a dry run: its rule, wildcards, threads and memory."""

    rule: str
    wildcards: dict[str, str]
    threads: int = 1
    mem_mb: int = 0


def parse_dry_run(text: str) -> list[PlannedJob]:
    """The jobs a ``snakemake -n`` output lists (its 'rule X:' blocks)."""
    jobs: list[PlannedJob] = []
    current: dict[str, Any] | None = None
    for line in text.splitlines():
        head = re.match(r"^(?:local)?rule (\S+):$", line.strip())
        if head and not line.startswith(" "):
            if current:
                jobs.append(PlannedJob(**current))
            current = {"rule": head.group(1), "wildcards": {}}
            continue
        if current is None:
            continue
        key, _, value = line.strip().partition(": ")
        if key == "wildcards":
            current["wildcards"] = dict(
                item.strip().split("=", 1) for item in value.split(",") if "=" in item
            )
        elif key == "threads":
            current["threads"] = int(value)
        elif key == "resources":
            found = re.search(r"\bmem_mb=(\d+)", value)
            current["mem_mb"] = int(found.group(1)) if found else 0
    if current:
        jobs.append(PlannedJob(**current))
    return jobs


def stage_of(rule: str) -> str:
    """The stage a rule belongs to (its family)."""
    if rule in STAGES:
        return STAGES[rule]
    if rule.startswith("train_"):
        return "training"
    if rule.endswith(("_figure", "_figures", "_table")) or rule.startswith("figure_"):
        return "figures and tables"
    if "gather" in rule or rule == "bottleneck_saturation":
        return "gathering"
    return rule.split("_")[0]


def plan_jobs(
    configfile: str | Path, workdir: str | Path, snakefile: str | Path
) -> list[PlannedJob]:
    """The jobs ``snakemake -n`` plans for a config in a working directory."""
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(snakefile), "--directory", str(workdir),
         "--configfile", str(configfile), "-n"],
        capture_output=True, text=True,
    )  # fmt: skip
    if res.returncode != 0:
        raise RuntimeError(f"snakemake -n failed for {configfile}:\n{res.stderr[-3000:]}")
    return [j for j in parse_dry_run(res.stdout + res.stderr) if j.rule not in TARGETS]


@dataclasses.dataclass
class StageCost:
    """One stage's jobs, job-seconds, longest job, peak memory per job, the disk its outputs
    keep and the largest temporary files of one job (deleted when it ends)."""

    jobs: int = 0
    job_seconds: float = 0.0
    longest: float = 0.0
    gpu_job_seconds: float = 0.0
    gpu_longest: float = 0.0
    mem_bytes: int = 0
    disk_bytes: int = 0
    temp_bytes: int = 0
    unmodelled: set = dataclasses.field(default_factory=set)

    def add(
        self, seconds: float, gpu_seconds: float, threads: int, mem: int, disk: int, temp: int = 0
    ) -> None:
        self.jobs += 1
        self.job_seconds += seconds * threads
        self.gpu_job_seconds += gpu_seconds * threads
        self.longest = max(self.longest, seconds)
        self.gpu_longest = max(self.gpu_longest, gpu_seconds)
        self.mem_bytes = max(self.mem_bytes, mem)
        self.disk_bytes += disk
        self.temp_bytes = max(self.temp_bytes, temp)


def wall(stages: Mapping[str, StageCost], cores: int, gpu: bool = False) -> float:
    """Projected wall seconds: stages one after the other (see the module docstring)."""
    total = 0.0
    for s in stages.values():
        busy, longest = (s.gpu_job_seconds, s.gpu_longest) if gpu else (s.job_seconds, s.longest)
        total += max(busy / cores, longest)
    return total


def model_window(config: Mapping[str, Any], model: str) -> int:
    """The window length of a model's tokenizer."""
    return config["tokenizers"][config["models"][model]["tokenizer"]]["window"]


def store_tokens(config: Mapping[str, Any], corpus: str, window: int) -> int:
    """Tokens of one store: a random-token corpus's size, else ``extraction.max_tokens`` (an
    upper bound: a small eval split holds fewer); sentence corpora at ``max_sentences`` × 32."""
    spec = config["corpora"][corpus]
    ex = config["extraction"]
    if spec["kind"] == "random_tokens":
        return min(spec["n_sequences"] * window, ex["max_tokens"])
    if spec.get("windows") == "document":
        return ex["max_sentences"] * 32
    return ex["max_tokens"]


def project(
    config: Mapping[str, Any],
    jobs: Sequence[PlannedJob],
    calibration: Calibration,
    sizes: Mapping[str, ModelSize],
    flags: Mapping[tuple[str, str], tuple[bool, int | None]],
    gpu_flops: float = GPU_FLOPS,
    heads_corpus: str | None = None,
) -> dict[str, StageCost]:
    """Cost of each stage of a plan (``flags``: (model, corpus) -> (eval loss, the lens's
    token budget or None); ``heads_corpus``: the corpus the rank-restricted heads read)."""
    stages: dict[str, StageCost] = defaultdict(StageCost)
    start = calibration.startup_s
    ex = config["extraction"]
    for job in jobs:
        stage = stages[stage_of(job.rule)]
        w = job.wildcards
        seconds = gpu_seconds = start
        mem, disk, temp = job.mem_mb * 2**20, 0, 0
        if job.rule == "extract" and w["model"] in sizes:
            size = sizes[w["model"]]
            window = model_window(config, w["model"])
            loss, budget = flags[(w["model"], w["corpus"])]
            key = shape_key(size, loss)
            n = store_tokens(config, w["corpus"], window)
            per_token = calibration.extract_s_per_token[key]
            forward = calibration.forward_s_per_token[key]
            load = calibration.load_s[key]
            lens = 0.0 if budget is None else min(n, budget) * calibration.lens_s_per_token[key]
            seconds = start + load + n * per_token + lens
            gpu_forward = n * forward_flops(size, window) / gpu_flops
            gpu_seconds = start + load + n * max(per_token - forward, 0.0) + gpu_forward + lens
            mem = extraction_bytes(
                size, ex["dtype"], ex["batch_size"], window, loss,
                config["corpora"][w["corpus"]].get("windows") == "document",
            )  # fmt: skip
            disk = store_bytes(size, n, max(1, n // window))
        elif job.rule == "geometry" and w["model"] in sizes:
            size = sizes[w["model"]]
            window = model_window(config, w["model"])
            n = store_tokens(config, w["corpus"], window)
            per_layer = calibration.geometry_s_per_layer[(size.hidden_size, n)]
            seconds = gpu_seconds = start + (size.n_layers + 1) * per_layer
        elif job.rule == "similarity" and w["model"] in sizes:
            size = sizes[w["model"]]
            window = model_window(config, w["model"])
            n = store_tokens(config, w["corpus"], window)
            key = (size.hidden_size, size.n_layers + 1, n)
            seconds = gpu_seconds = start + calibration.similarity_s[key]
        elif job.rule == "bottleneck_heads" and w["model"] in sizes:
            size = sizes[w["model"]]
            cost = heads_cost(config, w["model"], size, heads_corpus, calibration, gpu_flops)
            seconds, gpu_seconds, temp = cost
        elif job.rule not in STAGES and not stage_of(job.rule).startswith(("gathering", "figures")):
            stage.unmodelled.add(job.rule)
        stage.add(seconds, gpu_seconds, job.threads, mem, disk, temp)
    rank = {name: i for i, name in enumerate(ORDER)}
    last = {"figures and tables": len(ORDER) + 1, "other": len(ORDER) + 2}
    return dict(sorted(stages.items(), key=lambda kv: rank.get(kv[0], last.get(kv[0], len(ORDER)))))


def of_shape(measured: Mapping[str, float], size: ModelSize) -> float:
    """A value calibrated for a shape's extraction, measured with or without the eval loss
    (the bare forward and the model's construction do not depend on it)."""
    for loss in (False, True):
        if shape_key(size, loss) in measured:
            return measured[shape_key(size, loss)]
    raise KeyError(f"no extraction of shape {shape_key(size, False)} was calibrated")


def heads_cost(
    config: Mapping[str, Any],
    model: str,
    size: ModelSize,
    corpus: str | None,
    calibration: Calibration,
    gpu_flops: float,
) -> tuple[float, float, int]:
    """(seconds here, seconds on one GPU, temporary disk) of one rank-restricted heads job on
    ``corpus`` (its eval store's size: ``extraction.max_tokens`` where it is not known)."""
    from repgeom.bottleneck.memory import check_ranks

    o = config["bottleneck"]["heads"]
    window = model_window(config, model)
    n = o["token_budget"]
    n_eval = (
        config["extraction"]["max_tokens"]
        if corpus is None
        else store_tokens(config, corpus, window)
    )
    v, d = size.vocab_size, size.hidden_size
    per_token, per_update = calibration.heads_s[(v, d)]
    updates = -(-n // o["batch_size"])
    train = n * per_token + updates * per_update + n_eval * per_token / 3
    start = calibration.startup_s + of_shape(calibration.load_s, size)
    seconds = start + n * of_shape(calibration.forward_s_per_token, size) + train
    flops = n * forward_flops(size, window) + (n + n_eval / 3) * heads_flops(
        v, d, check_ranks(o["ranks"], v, d)
    )
    gpu_seconds = start + flops / gpu_flops
    return seconds, gpu_seconds, store_bytes(size, n, max(1, n // window), layers=1)


def hours(seconds: float) -> str:
    """Seconds as '2 h 05 min', '7 min 12 s' or '40 s'."""
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"
    if seconds >= 60:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{seconds:.0f} s"


def report(stages: Mapping[str, StageCost], cores: int, cache_bytes: int, gpu_note: str) -> str:
    """The table the command prints."""
    lines = [
        "| stage | jobs | job time (CPU) | longest job | peak memory per job | disk |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in stages.items():
        note = f" (start-up only: {', '.join(sorted(s.unmodelled))})" if s.unmodelled else ""
        disk = [format_bytes(s.disk_bytes)] if s.disk_bytes else []
        disk += [f"{format_bytes(s.temp_bytes)} temporary per job"] if s.temp_bytes else []
        lines.append(
            f"| {name}{note} | {s.jobs} | {hours(s.job_seconds)} | {hours(s.longest)} | "
            f"{format_bytes(s.mem_bytes) if s.mem_bytes else '–'} | {', '.join(disk) or '–'} |"
        )
    jobs = sum(s.jobs for s in stages.values())
    kept = format_bytes(sum(s.disk_bytes for s in stages.values()))
    temp = max((s.temp_bytes for s in stages.values()), default=0)
    temp_note = f" (+ {format_bytes(temp)} of one job's temporary files)" if temp else ""
    lines += [
        "",
        f"jobs: {jobs}; stores: {kept}{temp_note}; HF cache: {format_bytes(cache_bytes)}",
        f"projected wall time on this machine with --cores {cores}: {hours(wall(stages, cores))}",
        f"projected wall time on one GPU (extraction forward and heads on the GPU; {gpu_note}): "
        f"{hours(wall(stages, cores, gpu=True))}",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """python -m repgeom.workflow.footprint CONFIG [--cores N] [--gpu-flops F]"""
    import argparse
    import os

    from repgeom.bottleneck.plan import study_plan
    from repgeom.logit_lens.plan import lens_models
    from repgeom.workflow.config import load_config, load_config_file
    from repgeom.workflow.plan import (
        eval_loss_models,
        extraction_corpora,
        model_steps,
        study_hooks,
    )

    root = Path(__file__).resolve().parents[3]
    parser = argparse.ArgumentParser(prog="python -m repgeom.workflow.footprint")
    parser.add_argument("config", help="a config file, as given to --configfile")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--directory", default=".", help="the working directory of the run")
    parser.add_argument("--json", help="also write the projection per stage to this file")
    parser.add_argument(
        "--gpu-flops",
        type=float,
        default=None,
        help="measured FLOP/s of the forward on the GPU (benchmarks/gpu_check.sh)",
    )
    args = parser.parse_args(argv)
    config = load_config(load_config_file(args.config), root / "config" / "schema.yaml")
    for expand in study_hooks("expand_corpora"):  # as the workflow plans them
        config["corpora"] = expand(config["corpora"], [])
    jobs = plan_jobs(args.config, args.directory, root / "Snakefile")
    # the passes each store pays for, planned as rules/extract.smk plans them
    corpora = extraction_corpora(config)
    steps = {m: model_steps(v) for m, v in config["models"].items()}
    bottleneck = study_plan(config, steps, corpora)  # results/, as the rules plan it
    loss, _ = eval_loss_models(
        config, {m: bottleneck["eval_corpora"] for m in bottleneck["models"]}
    )
    lens = set(lens_models(config, []))
    budget = config["logit_lens"]["tokens"]
    flags = {
        (m, c): (c in loss.get(m, []), budget if m in lens and c in corpora else None)
        for m in config["models"]
        for c in config["corpora"]
    }
    sizes, cache = {}, 0
    for name, model in config["models"].items():
        cfg = transformers_config(model, config["tokenizers"])
        if cfg is None:
            print(f"model {name!r}: no config.json and no published dims: not projected")
            continue
        sizes[name] = model_size(cfg)
        if model["source"] == "hub":
            cache += len(model["revisions"]) * weights_bytes(sizes[name])
    calibration = Calibration(startup_s=measure_startup())
    print(
        f"calibrating on this machine (one thread per job); start-up {calibration.startup_s:.1f} s"
    )
    for name, size in sizes.items():
        window = model_window(config, name)
        cfg = transformers_config(config["models"][name], config["tokenizers"])
        for job in jobs:
            if job.rule != "extract" or job.wildcards.get("model") != name:
                continue
            asked_loss, asked_lens = flags[(name, job.wildcards["corpus"])]
            key = shape_key(size, asked_loss)
            if key not in calibration.extract_s_per_token:
                e, f, load = measure_extraction(cfg, window, asked_loss)
                calibration.extract_s_per_token[key], calibration.forward_s_per_token[key] = e, f
                calibration.load_s[key] = load
                print(
                    f"  extraction {key}: {1 / e:.0f} tokens/s (bare forward {1 / f:.0f} "
                    f"tokens/s), model built in {load:.1f} s"
                )
            if asked_lens is not None and key not in calibration.lens_s_per_token:
                with_lens = measure_extraction(cfg, window, asked_loss, True)[0]
                extra = max(with_lens - calibration.extract_s_per_token[key], 0.0)
                calibration.lens_s_per_token[key] = extra
                print(f"  logit lens {key}: {extra * 1e3:.2f} ms per decoded position")
        for job in jobs:
            if job.rule == "geometry" and job.wildcards.get("model") == name:
                n = store_tokens(config, job.wildcards["corpus"], window)
                if (size.hidden_size, n) not in calibration.geometry_s_per_layer:
                    t = measure_geometry(size.hidden_size, n, config["metrics"]["geometry"])
                    calibration.geometry_s_per_layer[(size.hidden_size, n)] = t
                    print(f"  geometry d={size.hidden_size}, {n} tokens: {t:.1f} s per layer")
            if job.rule == "similarity" and job.wildcards.get("model") == name:
                n = store_tokens(config, job.wildcards["corpus"], window)
                key = (size.hidden_size, size.n_layers + 1, n)
                if key not in calibration.similarity_s:
                    options = config["metrics"]["similarity"]
                    t = measure_similarity(*key, options)
                    calibration.similarity_s[key] = t
                    print(f"  similarity d={key[0]}, {key[1]} layers, {n} tokens: {t:.1f} s")
            if job.rule == "bottleneck_heads" and job.wildcards.get("model") == name:
                key = (size.vocab_size, size.hidden_size)
                if key not in calibration.heads_s:
                    t, u = measure_heads(*key, config["bottleneck"]["heads"])
                    calibration.heads_s[key] = (t, u)
                    rates = f"{t * 1e3:.1f} ms per token, {u:.1f} s per update"
                    print(f"  heads V={key[0]}, d={key[1]}: {rates}")
    gpu = args.gpu_flops or GPU_FLOPS
    note = (
        f"measured {gpu / 1e12:.0f} TFLOP/s"
        if args.gpu_flops
        else f"assumed {gpu / 1e12:.0f} TFLOP/s, 30 % of an H100's bf16 peak, no GPU measured"
    )
    stages = project(config, jobs, calibration, sizes, flags, gpu, bottleneck["heads_corpus"])
    print()
    print(report(stages, args.cores, cache, note))
    if args.json:
        import json

        out = {
            "cores": args.cores,
            "wall_s": wall(stages, args.cores),
            "gpu_wall_s": wall(stages, args.cores, gpu=True),
            "calibration": {
                k: {str(kk): vv for kk, vv in v.items()} if isinstance(v, dict) else v
                for k, v in dataclasses.asdict(calibration).items()
            },
            "stages": {
                k: {**dataclasses.asdict(v), "unmodelled": sorted(v.unmodelled)}
                for k, v in stages.items()
            },
        }
        Path(args.json).write_text(json.dumps(out, indent=1))
