"""A run's cost before it starts: jobs, disk, memory and wall time per stage, projected from
Snakemake's own plan and a short calibration on this machine.

- The jobs are those of ``snakemake -n`` (the workflow's static DAG) for the config; the
  target rules of the run and of each study (:data:`TARGETS`) are not jobs.
- Every rule has an entry in :data:`COSTS`: rule name -> :class:`RuleCost`, its stage and the
  function costing one of its jobs (:class:`JobCost`: seconds here, seconds with one GPU,
  projected peak memory, disk kept, temporary disk). The rules made one per trained model or
  per downloaded corpus are found by their name's prefix (:data:`NAMED_RULES`). A job of a
  rule without an entry is an error naming the rule (:func:`rule_cost`).
- Each model's shape and this machine's speeds come from :mod:`repgeom.workflow.calibration`;
  each cost is its calibrated rate times the job's size (steps, iterations, tokens, layers,
  stores, bytes, files, figures), plus the start-up of its Python job (with torch, or without
  it for the jobs that do not import it).
- A rank-restricted heads job is its feature pass (the bare forward of ``token_budget`` tokens)
  plus the heads' training, plus their evaluation on the eval store (counted as a third of
  training per token: a forward without the backward); its disk is the temporary store of the
  features (deleted when the job ends).
- A job's projected peak memory is its resident memory at its peak: the measured start-up of
  its kind (with torch or without) and what its work holds, from the memory model of the rule
  where there is one (extraction: :func:`repgeom.workflow.footprint.extraction_bytes`; the
  heads: their own estimate, :func:`repgeom.bottleneck.memory.heads_memory_estimate`), else
  the peak of the fresh process that ran the rule's real function in the calibration (scaled to
  the job's size where it ran a smaller one), plus the model's weights where the job loads a
  model that the calibration did not; 0 (printed "–") where nothing measured it. The memory
  Snakemake reserves for the job (the rule's ``mem_mb``, from the dry run) is reported beside
  it.
- Wall time assumes stages one after the other: each stage takes its total job-seconds over
  the cores, or its longest job if that is longer.
- On a GPU, the extraction's forward, the heads' feature pass and training, and the training
  of the models and Birth variants whose device is not ``cpu`` run at an assumed rate
  (:data:`GPU_FLOPS`) unless a measured one is given; writing a store stays what it costs here.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from repgeom.activations.size import ModelSize
from repgeom.runtime import format_bytes
from repgeom.steps import checkpoint_steps
from repgeom.workflow.calibration import (
    Calibration,
    CorpusRates,
    Peak,
    checkpoint_reads,
    forward_flops,
    heads_flops,
    shape_key,
)
from repgeom.workflow.footprint import (
    extraction_bytes,
    store_bytes,
    weights_bytes,
)
from repgeom.workflow.studies import registry

# effective FLOP/s of a transformer forward on one GPU when none was measured: 30 % of an
# H100's dense bf16 peak (989 TFLOP/s), a usual utilisation for batch 8 × 512 inference
GPU_FLOPS = 3e14
# the stages, in the order the table lists them
ORDER = [
    "corpora",
    "tokens",
    "training",
    "Birth",
    "checkpoint weights",
    "extraction",
    "geometry",
    "similarity",
    "gathering",
    "rank-restricted heads",
    "LM-head spectra",
    "n-grams",
    "languages metrics",
    "figures and tables",
    "other",
]
# the target rules of the run and of each study: they name outputs, they run nothing
TARGETS = frozenset({"all", "spine", *(s.name for s in registry())})
# tokens per sentence of a sentence corpus's store (an upper bound, as in store_tokens)
SENTENCE_TOKENS = 32


@dataclasses.dataclass(frozen=True)
class PlannedJob:
    """One job of a dry run: its rule, wildcards, threads, memory, inputs and outputs."""

    rule: str
    wildcards: dict[str, str]
    threads: int = 1
    mem_mb: int = 0
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()


def _job_field(key: str, value: str) -> dict[str, Any]:
    """The :class:`PlannedJob` field(s) one line of a dry run's job block gives."""
    if key == "wildcards":
        pairs = (item.strip().split("=", 1) for item in value.split(",") if "=" in item)
        return {"wildcards": dict(pairs)}
    if key == "threads":
        return {"threads": int(value)}
    if key == "resources":
        found = re.search(r"\bmem_mb=(\d+)", value)
        return {"mem_mb": int(found.group(1)) if found else 0}
    if key in ("input", "output"):
        return {f"{key}s": tuple(v for v in value.split(", ") if v)}
    return {}


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
        elif current is not None:
            key, _, value = line.strip().partition(": ")
            current.update(_job_field(key, value))
    if current:
        jobs.append(PlannedJob(**current))
    return jobs


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


@dataclasses.dataclass(frozen=True)
class JobCost:
    """One job's cost: seconds on this machine, seconds with one GPU, its projected peak memory
    (0: not projected), the disk its outputs keep and its temporary files (deleted when it
    ends)."""

    seconds: float
    gpu_seconds: float
    mem_bytes: int
    disk_bytes: int = 0
    temp_bytes: int = 0


@dataclasses.dataclass(frozen=True)
class Costing:
    """What a cost function reads besides its job: the config, the calibration, each model's
    shape, the passes of each store (``flags``: (model, corpus) -> (eval loss, the lens's token
    budget or None)), the GPU's rate, the corpus the rank-restricted heads read and the whole
    plan."""

    config: Mapping[str, Any]
    calibration: Calibration
    sizes: Mapping[str, ModelSize]
    flags: Mapping[tuple[str, str], tuple[bool, int | None]] = dataclasses.field(
        default_factory=dict
    )
    gpu_flops: float = GPU_FLOPS
    heads_corpus: str | None = None
    jobs: Sequence[PlannedJob] = ()


CostFunction = Callable[[Costing, PlannedJob], JobCost]


@dataclasses.dataclass(frozen=True)
class RuleCost:
    """A rule's entry in :data:`COSTS`: its stage and the function costing one of its jobs."""

    stage: str
    cost: CostFunction


def _cost(
    start: float,
    seconds: float = 0.0,
    gpu_seconds: float | None = None,
    disk: int = 0,
    mem: int = 0,
) -> JobCost:
    """A job's cost: its start-up plus ``seconds`` (``gpu_seconds`` with one GPU, the same when
    not given), its projected peak memory ``mem`` and ``disk``."""
    gpu = seconds if gpu_seconds is None else gpu_seconds
    return JobCost(start + seconds, start + gpu, mem, disk)


def measured_peak(c: Costing, kind: str, key: Any, base: int | None = None) -> int:
    """A job's projected peak from the calibration's measurement ``(kind, key)``: the peak of the
    fresh process that ran it, or, given the start-up ``base`` of a job importing other than
    that process did, ``base`` plus what the measurement allocated; 0 when it was not measured
    (or ``base`` was not)."""
    peak = c.calibration.peaks.get((kind, key))
    if peak is None or base == 0:
        return 0
    return peak.peak if base is None else peak.above(base)


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
        return ex["max_sentences"] * SENTENCE_TOKENS
    return ex["max_tokens"]


def of_shape(measured: Mapping[str, float], size: ModelSize) -> float:
    """A value calibrated for a shape's extraction, measured with or without the eval loss
    (the bare forward and the model's construction do not depend on it)."""
    for loss in (False, True):
        if shape_key(size, loss) in measured:
            return measured[shape_key(size, loss)]
    raise KeyError(f"no extraction of shape {shape_key(size, False)} was calibrated")


# ---- the stages with a store: extraction, geometry, similarity, the rank-restricted heads


def extract_cost(c: Costing, job: PlannedJob) -> JobCost:
    """Start-up, building the model, the store's tokens × the calibrated seconds per token (the
    eval loss included where the store gets it), the logit lens per decoded position on its
    token budget; on a GPU the forward at the GPU's rate. Memory: :func:`extraction_bytes` with
    the measured start-up of a job loading a checkpoint as its runtime; disk: the store."""
    w, cal = job.wildcards, c.calibration
    start = cal.startup_s
    if w["model"] not in c.sizes:
        return _cost(start)
    size = c.sizes[w["model"]]
    window = model_window(c.config, w["model"])
    loss, budget = c.flags[(w["model"], w["corpus"])]
    key = shape_key(size, loss)
    n = store_tokens(c.config, w["corpus"], window)
    per_token = cal.extract_s_per_token[key]
    forward = cal.forward_s_per_token[key]
    load = cal.load_s[key]
    lens = 0.0 if budget is None else min(n, budget) * cal.lens_s_per_token[key]
    gpu_forward = n * forward_flops(size, window) / c.gpu_flops
    ex = c.config["extraction"]
    sentences = c.config["corpora"][w["corpus"]].get("windows") == "document"
    runtime = cal.model_startup_rss
    mem = extraction_bytes(
        size, ex["dtype"], ex["batch_size"], window, loss, sentences, runtime, n
    ) if runtime else 0  # fmt: skip
    return JobCost(
        start + load + n * per_token + lens,
        start + load + n * max(per_token - forward, 0.0) + gpu_forward + lens,
        mem,
        store_bytes(size, n, max(1, n // window)),
    )


def geometry_cost(c: Costing, job: PlannedJob) -> JobCost:
    """Start-up and the calibrated seconds per layer (embeddings included) at the store's hidden
    size and tokens; memory: the peak of its calibration."""
    w, start = job.wildcards, c.calibration.startup_s
    if w["model"] not in c.sizes:
        return _cost(start)
    size = c.sizes[w["model"]]
    n = store_tokens(c.config, w["corpus"], model_window(c.config, w["model"]))
    per_layer = c.calibration.geometry_s_per_layer[(size.hidden_size, n)]
    mem = measured_peak(c, "geometry", (size.hidden_size, n))
    return _cost(start, (size.n_layers + 1) * per_layer, mem=mem)


def similarity_cost(c: Costing, job: PlannedJob) -> JobCost:
    """Start-up and the calibrated similarity job at the store's shape; memory: the peak of its
    calibration."""
    w, start = job.wildcards, c.calibration.startup_s
    if w["model"] not in c.sizes:
        return _cost(start)
    size = c.sizes[w["model"]]
    n = store_tokens(c.config, w["corpus"], model_window(c.config, w["model"]))
    key = (size.hidden_size, size.n_layers + 1, n)
    return _cost(start, c.calibration.similarity_s[key], mem=measured_peak(c, "similarity", key))


def heads_job_cost(c: Costing, job: PlannedJob) -> JobCost:
    """:func:`heads_cost` of the job's model; its temporary disk is the feature store; memory:
    :func:`heads_memory`."""
    model = job.wildcards["model"]
    if model not in c.sizes:
        return _cost(c.calibration.startup_s)
    cal, size = c.calibration, c.sizes[model]
    seconds, gpu_seconds, temp = heads_cost(c.config, model, size, c.heads_corpus, cal, c.gpu_flops)
    return JobCost(seconds, gpu_seconds, heads_memory(c, size), 0, temp)


def heads_memory(c: Costing, size: ModelSize) -> int:
    """Peak memory of a heads job: its start-up (the calibration's process after the imports of
    a heads job), the model's weights in ``extraction.dtype``, and the larger of what the
    heads' measured training allocated (its batches capped as calibrated) and the heads' own
    estimate at the config's batch size
    (:meth:`repgeom.bottleneck.options.HeadTraining.memory_estimate`, which the job checks
    before it allocates); 0 when the training was not measured."""
    from repgeom.bottleneck.options import HeadTraining
    from repgeom.options import build

    cal = c.calibration
    peak = cal.peaks.get(("heads", (size.vocab_size, size.hidden_size)))
    if peak is None:
        return 0
    o = build(HeadTraining, c.config["bottleneck"]["heads"], "bottleneck.heads", extra=True)
    estimate = o.memory_estimate(size.vocab_size, size.hidden_size)["total"]
    model = weights_bytes(size, c.config["extraction"]["dtype"])
    return peak.before + model + max(peak.peak - peak.before, estimate)


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


# ---- corpora and tokens: the corpus's size and the rates measured on a sample of its text


def corpus_rates(c: Costing, corpus: str | None) -> CorpusRates:
    """A corpus's calibrated size and rates (none when its text was not there to sample)."""
    return c.calibration.corpora.get(corpus or "", CorpusRates())


def train_chars(c: Costing, corpus: str | None) -> float:
    """Characters of a corpus's train split."""
    spec = c.config["corpora"].get(corpus or "", {})
    return corpus_rates(c, corpus).chars * (1 - spec.get("eval_fraction", 0.0))


def corpus_cost(c: Costing, job: PlannedJob) -> JobCost:
    """Start-up of a job without torch, and reading the corpus at its calibrated rate; memory:
    the peak of reading its sample, extrapolated to the whole corpus (none for a corpus not
    sampled)."""
    corpus = job.wildcards.get("corpus")
    rates = corpus_rates(c, corpus)
    mem = measured_peak(c, "corpus", corpus)
    return _cost(c.calibration.light_startup_s, rates.chars * rates.read_s_per_char, mem=mem)


def download_cost(c: Costing, job: PlannedJob) -> JobCost:
    """Start-up of a job without torch (the transfer depends on the network, which this machine
    does not measure); memory: that start-up's (the transfer streams to disk in 1 MiB
    blocks)."""
    cal = c.calibration
    return _cost(cal.light_startup_s, mem=cal.light_startup_rss)


def tokenizer_cost(c: Costing, job: PlannedJob) -> JobCost:
    """Start-up and a BPE trained on the corpus's train split at its calibrated rate; memory:
    the start-up without torch (the job does not import it) and what the corpus's tokenization
    calibration allocated, extrapolated to the whole corpus."""
    corpus = c.config["tokenizers"][job.wildcards["tokenizer"]].get("corpus")
    rate = corpus_rates(c, corpus).bpe_s_per_char
    mem = measured_peak(c, "tokens", corpus, c.calibration.light_startup_rss)
    return _cost(c.calibration.startup_s, train_chars(c, corpus) * rate, mem=mem)


def tokens_cost(c: Costing, job: PlannedJob) -> JobCost:
    """Start-up and the corpus (both splits) tokenized at its calibrated rate (random tokens:
    drawn, no text); memory: the peak of the corpus's tokenization calibration, extrapolated to
    the whole corpus (a corpus not sampled: the start-up with torch, which loading a tokenizer
    imports)."""
    corpus = job.wildcards["corpus"]
    rates = corpus_rates(c, corpus)
    mem = measured_peak(c, "tokens", corpus) or c.calibration.startup_rss
    return _cost(c.calibration.startup_s, rates.chars * rates.encode_s_per_char, mem=mem)


# ---- training: the models the workflow trains, and Birth's variants


def training_cost(c: Costing, job: PlannedJob) -> JobCost:
    """Start-up, building the model, ``steps`` × the calibrated seconds per step and each saved
    checkpoint's evaluation and save; on a GPU (training device not cpu) the steps at the
    GPU's rate (forward and backward: 3 × the forward's FLOPs per token). Disk: the
    checkpoints; memory: the peak of its calibration (the real training at its shape)."""
    model = job.rule.removeprefix("train_")
    start = c.calibration.startup_s
    if model not in c.sizes:
        return _cost(start)
    t = c.config["models"][model]["training"]
    size = c.sizes[model]
    per_step, per_checkpoint, build = c.calibration.training_s[model]
    saved = len(checkpoint_steps(t))
    seconds = build + t["steps"] * per_step + saved * per_checkpoint
    gpu = seconds
    if t.get("device", "cpu") != "cpu":
        window = model_window(c.config, model)
        tokens = t["steps"] * t["batch_size"] * window
        gpu = (
            build + 3 * tokens * forward_flops(size, window) / c.gpu_flops + saved * per_checkpoint
        )
    mem = measured_peak(c, "training", model)
    return _cost(start, seconds, gpu, saved * weights_bytes(size), mem)


def birth_variant(config: Mapping[str, Any], name: str) -> Any:
    """The :class:`repgeom.birth.config.BirthConfig` of one variant: ``birth.common``, then
    its own settings, the schema's defaults for the rest."""
    from repgeom.birth.config import BirthConfig
    from repgeom.workflow.config import options

    section = config["birth"]
    return options(
        BirthConfig, "birth.$defs.variant", {**section["common"], **section["variants"][name]}
    )


def evaluations(iterations: int, every: int) -> int:
    """Evaluations of a Birth run: every ``every`` updates from 0, and after the last."""
    return iterations // every + 1 + (1 if iterations % every else 0)


def birth_cost(c: Costing, job: PlannedJob) -> JobCost:
    """Start-up, ``n_iterations`` × the calibrated seconds per iteration and each evaluation;
    on a GPU (``birth.device`` not cpu) its iterations and evaluations at the GPU's rate
    (6 FLOPs per parameter and token, plus attention: a floor for such small models, whose
    steps a GPU runs below that rate). Memory: the peak of its calibration (extrapolated to
    batches above those calibrated)."""
    name = job.wildcards["variant"]
    cfg = birth_variant(c.config, name)
    per_iteration, per_evaluation, params = c.calibration.birth_s[name]
    n_eval = evaluations(cfg.n_iterations, cfg.eval_every)
    seconds = cfg.n_iterations * per_iteration + n_eval * per_evaluation
    gpu = seconds
    if c.config["birth"].get("device", "cpu") != "cpu":
        tokens = cfg.batch_size * cfg.seq_len
        flops = 6 * tokens * (params + cfg.n_layers * cfg.seq_len * cfg.d_model)
        gpu = (cfg.n_iterations + n_eval) * flops / c.gpu_flops
    return _cost(c.calibration.startup_s, seconds, gpu, mem=measured_peak(c, "birth", name))


# ---- checkpoint weights, the softmax bottleneck's other jobs, the languages metrics


def stored_bytes(c: Costing, model: str) -> int:
    """Bytes of one of a model's checkpoints as stored (0 when its shape is not known)."""
    return weights_bytes(c.sizes[model]) if model in c.sizes else 0


def fingerprint_cost(c: Costing, job: PlannedJob) -> JobCost:
    """Start-up of a job without torch and the checkpoint's stored bytes hashed at the calibrated
    rate; memory: the peak of the weights' calibration (it reads tensor by tensor)."""
    cal = c.calibration
    hashed = stored_bytes(c, job.wildcards["model"]) * cal.hash_s_per_byte
    return _cost(cal.light_startup_s, hashed, mem=measured_peak(c, "weights", None))


def weights_cost(c: Costing, job: PlannedJob) -> JobCost:
    """Start-up of a job without torch and the checkpoints the distances read
    (:func:`repgeom.workflow.calibration.checkpoint_reads` of its fingerprints) at the
    calibrated rate per byte; memory: the peak of the weights' calibration (it reads tensor by
    tensor)."""
    cal = c.calibration
    n = sum(1 for f in job.inputs if f.endswith(".json"))
    read = checkpoint_reads(n) * stored_bytes(c, job.wildcards["model"])
    mem = measured_peak(c, "weights", None)
    return _cost(cal.light_startup_s, read * cal.distance_s_per_byte, mem=mem)


def reading_cost(c: Costing, job: PlannedJob) -> JobCost:
    """Start-up of a job without torch and each input read at the calibrated rate (gathers, the
    integrity gate); memory: the peak of the reads' calibration."""
    cal = c.calibration
    mem = measured_peak(c, "reads", None)
    return _cost(cal.light_startup_s, len(job.inputs) * cal.read_s_per_file, mem=mem)


def lm_head_cost(c: Costing, job: PlannedJob) -> JobCost:
    """Start-up, building the model (as calibrated for its extraction) and the spectrum at its
    (V, d); memory: the start-up of a job loading a checkpoint, the model's weights in float32
    (as the job loads it) and what the spectrum's calibration allocated (scaled to V rows)."""
    cal = c.calibration
    size = c.sizes.get(job.wildcards["model"])
    if size is None:
        return _cost(cal.startup_s)
    try:
        load = of_shape(cal.load_s, size)
    except KeyError:  # no extraction of this shape: building the model is not counted
        load = 0.0
    key = (size.vocab_size, size.hidden_size)
    mem = measured_peak(c, "lm_head", key, cal.model_startup_rss)
    mem += weights_bytes(size, "float32") if mem else 0
    return _cost(cal.startup_s, load + cal.lm_head_s[key], mem=mem)


def ngram_tokens(c: Costing, corpus: str) -> float:
    """Tokens the n-gram job counts: the corpus's train split (its calibrated characters ×
    tokens per character), at most ``bottleneck.ngram.max_tokens``."""
    rates = corpus_rates(c, corpus)
    tokens = train_chars(c, corpus) * rates.tokens_per_char
    cap = c.config["bottleneck"]["ngram"].get("max_tokens")
    return min(tokens, cap) if cap else tokens


def ngram_cost(c: Costing, job: PlannedJob) -> JobCost:
    """Start-up of a job without torch and the calibrated W-error: its fixed part and its
    seconds per token × the train split's tokens; memory: the peak of its calibration,
    extrapolated to those tokens."""
    w, cal = job.wildcards, c.calibration
    key = (w["tokenizer"], w["corpus"])
    fixed, per_token = cal.ngram_s.get(key, (0.0, 0.0))
    seconds = fixed + ngram_tokens(c, w["corpus"]) * per_token
    return _cost(cal.light_startup_s, seconds, mem=measured_peak(c, "ngram", key))


def languages_key(config: Mapping[str, Any], size: ModelSize) -> tuple[int, int, int]:
    """(hidden size, sentences, tokens) of the stores a languages metrics job reads:
    ``extraction.max_sentences`` sentences, or the largest ``n_sentences`` of the corpora that
    give one when that is fewer; 32 tokens each."""
    most = config["extraction"]["max_sentences"]
    counts = [c["n_sentences"] for c in config["corpora"].values() if c.get("n_sentences")]
    sentences = min(most, max(counts, default=most))
    return size.hidden_size, sentences, sentences * SENTENCE_TOKENS


def languages_cost(c: Costing, job: PlannedJob) -> JobCost:
    """Start-up of a job without torch, the calibrated seconds per store and layer for each
    store it reads, and per pair set and layer for each grammaticality set; memory: the peak of
    its calibration (two stores, one layer)."""
    cal = c.calibration
    size = c.sizes.get(job.wildcards["model"])
    if size is None:
        return _cost(cal.light_startup_s)
    per_store, per_pair = cal.languages_s[languages_key(c.config, size)]
    pair_sets = len(c.config["languages"].get("grammaticality") or [])
    layers = size.n_layers + 1
    seconds = layers * (len(job.inputs) * per_store + pair_sets * per_pair)
    key = languages_key(c.config, size)
    return _cost(cal.light_startup_s, seconds, mem=measured_peak(c, "languages", key))


# ---- figures, tables and the rest


def figure_cost(c: Costing, job: PlannedJob) -> JobCost:
    """Start-up of a job without torch, matplotlib's import, each input read and each figure
    (a PNG output, with its PDF) at the calibrated rates; memory: the peak of the figures'
    calibration process."""
    cal = c.calibration
    figures = sum(1 for f in job.outputs if f.endswith(".png"))
    seconds = cal.plot_import_s + len(job.inputs) * cal.read_s_per_file + figures * cal.figure_s
    return _cost(cal.light_startup_s, seconds, mem=cal.figure_rss)


def manifest_cost(c: Costing, job: PlannedJob) -> JobCost:
    """Start-up of a job without torch and every store the plan writes hashed (sha256) at the
    calibrated rate (an upper bound: the stores are compressed); memory: the peak of the
    weights' calibration (hashing, file by file)."""
    cal = c.calibration
    stores = sum(extract_cost(c, j).disk_bytes for j in c.jobs if j.rule == "extract")
    mem = measured_peak(c, "weights", None)
    return _cost(cal.light_startup_s, stores * cal.hash_s_per_byte, mem=mem)


def release_cost(c: Costing, job: PlannedJob) -> JobCost:
    """Start-up of a job without torch (it deletes a hub revision's files), and its memory."""
    cal = c.calibration
    return _cost(cal.light_startup_s, mem=cal.light_startup_rss)


FIGURE = RuleCost("figures and tables", figure_cost)
GATHER = RuleCost("gathering", reading_cost)
# rule -> its stage and cost function: every rule of the Snakefile and rules/*.smk
COSTS: dict[str, RuleCost] = {
    "corpus": RuleCost("corpora", corpus_cost),
    "languages_corpus": RuleCost("corpora", corpus_cost),
    "download": RuleCost("corpora", download_cost),  # download_{corpus}
    "train_tokenizer": RuleCost("tokens", tokenizer_cost),
    "tokens": RuleCost("tokens", tokens_cost),
    "train_model": RuleCost("training", training_cost),  # train_{model}
    "birth_variant": RuleCost("Birth", birth_cost),
    "fingerprint": RuleCost("checkpoint weights", fingerprint_cost),
    "integrity": RuleCost("checkpoint weights", reading_cost),
    "weights": RuleCost("checkpoint weights", weights_cost),
    "extract": RuleCost("extraction", extract_cost),
    "geometry": RuleCost("geometry", geometry_cost),
    "similarity": RuleCost("similarity", similarity_cost),
    "gather_metric": GATHER,
    "bottleneck_saturation": GATHER,
    "bottleneck_lm_head_gather": GATHER,
    "logit_lens_gather": GATHER,
    "bottleneck_heads": RuleCost("rank-restricted heads", heads_job_cost),
    "bottleneck_lm_head": RuleCost("LM-head spectra", lm_head_cost),
    "bottleneck_ngram": RuleCost("n-grams", ngram_cost),
    "languages_metrics": RuleCost("languages metrics", languages_cost),
    "figure_anisotropy": FIGURE,
    "similarity_layers_figure": FIGURE,
    "similarity_to_final_figure": FIGURE,
    "alpha_req_figure": FIGURE,
    "weights_figure": FIGURE,
    "shape_of_learning_figure": FIGURE,
    "shape_of_learning_scale_figure": FIGURE,
    "shape_of_learning_table": FIGURE,
    "birth_figures": FIGURE,
    "bottleneck_figures": FIGURE,
    "languages_figures": FIGURE,
    "languages_scores": FIGURE,
    "logit_lens_figures": FIGURE,
    "origins_figures": FIGURE,
    "manifest": RuleCost("other", manifest_cost),
    "release_hub_revision": RuleCost("other", release_cost),
}
# rules made one per trained model (rules/models.smk) or downloaded corpus (rules/corpus.smk):
# the prefix of their names -> their entry in COSTS
NAMED_RULES = {"train_": "train_model", "download_": "download"}


def rule_cost(rule: str) -> RuleCost:
    """A rule's entry in :data:`COSTS` (by its name, else by a prefix of :data:`NAMED_RULES`);
    KeyError naming the rule when it has none."""
    if rule in COSTS:
        return COSTS[rule]
    for prefix, entry in NAMED_RULES.items():
        if rule.startswith(prefix):
            return COSTS[entry]
    raise KeyError(
        f"rule {rule!r} has no cost function: add it to COSTS in repgeom.workflow.projection"
    )


@dataclasses.dataclass
class StageCost:
    """One stage's jobs, job-seconds, longest job, the largest projected peak memory of one job
    (0: none projected) and the largest memory Snakemake reserves for one (its rule's
    ``mem_mb``), the disk its outputs keep and the largest temporary files of one job (deleted
    when it ends)."""

    jobs: int = 0
    job_seconds: float = 0.0
    longest: float = 0.0
    gpu_job_seconds: float = 0.0
    gpu_longest: float = 0.0
    mem_bytes: int = 0
    reserved_bytes: int = 0
    disk_bytes: int = 0
    temp_bytes: int = 0

    def add(self, cost: JobCost, job: PlannedJob) -> None:
        """Count one job of the stage."""
        self.jobs += 1
        self.job_seconds += cost.seconds * job.threads
        self.gpu_job_seconds += cost.gpu_seconds * job.threads
        self.longest = max(self.longest, cost.seconds)
        self.gpu_longest = max(self.gpu_longest, cost.gpu_seconds)
        self.mem_bytes = max(self.mem_bytes, cost.mem_bytes)
        self.reserved_bytes = max(self.reserved_bytes, job.mem_mb * 2**20)
        self.disk_bytes += cost.disk_bytes
        self.temp_bytes = max(self.temp_bytes, cost.temp_bytes)


def wall(stages: Mapping[str, StageCost], cores: int, gpu: bool = False) -> float:
    """Projected wall seconds: stages one after the other (see the module docstring)."""
    total = 0.0
    for s in stages.values():
        busy, longest = (s.gpu_job_seconds, s.gpu_longest) if gpu else (s.job_seconds, s.longest)
        total += max(busy / cores, longest)
    return total


def project(
    config: Mapping[str, Any],
    jobs: Sequence[PlannedJob],
    calibration: Calibration,
    sizes: Mapping[str, ModelSize],
    flags: Mapping[tuple[str, str], tuple[bool, int | None]],
    gpu_flops: float = GPU_FLOPS,
    heads_corpus: str | None = None,
) -> dict[str, StageCost]:
    """Cost of each stage of a plan, in :data:`ORDER` (``flags``: (model, corpus) -> (eval loss,
    the lens's token budget or None); ``heads_corpus``: the corpus the rank-restricted heads
    read). KeyError naming a rule without a cost function."""
    costing = Costing(config, calibration, sizes, flags, gpu_flops, heads_corpus, jobs)
    stages: dict[str, StageCost] = defaultdict(StageCost)
    for job in jobs:
        entry = rule_cost(job.rule)
        stages[entry.stage].add(entry.cost(costing, job), job)
    return {name: stages[name] for name in ORDER if name in stages}


def hours(seconds: float) -> str:
    """Seconds as '2 h 05 min', '7 min 12 s' or '40 s'."""
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"
    if seconds >= 60:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{seconds:.0f} s"


def _bytes(n: int) -> str:
    """Bytes as the table prints them ('–' for none)."""
    return format_bytes(n) if n else "–"


def report(stages: Mapping[str, StageCost], cores: int, cache_bytes: int, gpu_note: str) -> str:
    """The table the command prints."""
    lines = [
        "| stage | jobs | job time (CPU) | longest job | projected peak memory per job | "
        "reserved per job (mem_mb) | disk |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, s in stages.items():
        disk = [format_bytes(s.disk_bytes)] if s.disk_bytes else []
        disk += [f"{format_bytes(s.temp_bytes)} temporary per job"] if s.temp_bytes else []
        lines.append(
            f"| {name} | {s.jobs} | {hours(s.job_seconds)} | {hours(s.longest)} | "
            f"{_bytes(s.mem_bytes)} | {_bytes(s.reserved_bytes)} | {', '.join(disk) or '–'} |"
        )
    jobs = sum(s.jobs for s in stages.values())
    kept = format_bytes(sum(s.disk_bytes for s in stages.values()))
    temp = max((s.temp_bytes for s in stages.values()), default=0)
    temp_note = f" (+ {format_bytes(temp)} of one job's temporary files)" if temp else ""
    lines += [
        "",
        f"jobs: {jobs}; stores and checkpoints: {kept}{temp_note}; "
        f"HF cache: {format_bytes(cache_bytes)}",
        "projected peak memory: the largest of one job of the stage (its start-up and its work, "
        "measured by the calibration or from the rule's memory model; – where none was); "
        "reserved: the largest mem_mb Snakemake gives one of its jobs",
        f"projected wall time on this machine with --cores {cores}: {hours(wall(stages, cores))}",
        f"projected wall time on one GPU (extraction forward, heads and training on the GPU; "
        f"{gpu_note}): {hours(wall(stages, cores, gpu=True))}",
    ]
    return "\n".join(lines)


# ---- the calibration a plan needs: each measurement once per shape (or model, variant, corpus)


def _jobs_of(jobs: Sequence[PlannedJob], *rules: str) -> list[PlannedJob]:
    """The plan's jobs of ``rules`` (entries of :data:`COSTS`: ``train_model`` is every
    model's training rule)."""
    return [j for j in jobs if any(rule_cost(j.rule) is COSTS[r] for r in rules)]


def _calibrate_extraction(
    cal: Calibration,
    config: Mapping[str, Any],
    jobs: Sequence[PlannedJob],
    sizes: Mapping[str, ModelSize],
    flags: Mapping[tuple[str, str], tuple[bool, int | None]],
) -> None:
    """Extraction of every (shape, eval loss) the plan extracts, and the logit lens where a store
    gets it."""
    from repgeom.workflow.calibration import measure_extraction, transformers_config

    for job in _jobs_of(jobs, "extract"):
        name = job.wildcards["model"]
        if name not in sizes:
            continue
        size, window = sizes[name], model_window(config, name)
        cfg = transformers_config(config["models"][name], config["tokenizers"])
        asked_loss, asked_lens = flags[(name, job.wildcards["corpus"])]
        key = shape_key(size, asked_loss)
        if key not in cal.extract_s_per_token:
            e, f, load = measure_extraction(cfg, window, asked_loss)
            cal.extract_s_per_token[key], cal.forward_s_per_token[key] = e, f
            cal.load_s[key] = load
            print(
                f"  extraction {key}: {1 / e:.0f} tokens/s (bare forward {1 / f:.0f} "
                f"tokens/s), model built in {load:.1f} s"
            )
        if asked_lens is not None and key not in cal.lens_s_per_token:
            with_lens = measure_extraction(cfg, window, asked_loss, True)[0]
            extra = max(with_lens - cal.extract_s_per_token[key], 0.0)
            cal.lens_s_per_token[key] = extra
            print(f"  logit lens {key}: {extra * 1e3:.2f} ms per decoded position")


def _calibrate_metrics(
    cal: Calibration,
    config: Mapping[str, Any],
    jobs: Sequence[PlannedJob],
    sizes: Mapping[str, ModelSize],
) -> None:
    """The geometry and similarity jobs at each store's shape, each in a fresh process."""
    from repgeom.workflow.calibration import in_fresh_process, measure_geometry, measure_similarity

    for job in _jobs_of(jobs, "geometry", "similarity"):
        name = job.wildcards["model"]
        if name not in sizes:
            continue
        size = sizes[name]
        n = store_tokens(config, job.wildcards["corpus"], model_window(config, name))
        if job.rule == "geometry" and (size.hidden_size, n) not in cal.geometry_s_per_layer:
            key = (size.hidden_size, n)
            t, peak = in_fresh_process(measure_geometry, *key, config["metrics"]["geometry"])
            cal.geometry_s_per_layer[key], cal.peaks[("geometry", key)] = t, peak
            print(f"  geometry d={key[0]}, {n} tokens: {t:.1f} s per layer{_peak_note(peak)}")
        key = (size.hidden_size, size.n_layers + 1, n)
        if job.rule == "similarity" and key not in cal.similarity_s:
            t, peak = in_fresh_process(measure_similarity, *key, config["metrics"]["similarity"])
            cal.similarity_s[key], cal.peaks[("similarity", key)] = t, peak
            print(
                f"  similarity d={key[0]}, {key[1]} layers, {n} tokens: {t:.1f} s{_peak_note(peak)}"
            )


def _peak_note(peak: Peak) -> str:
    """How a calibration line names the peak memory of its process."""
    return f", peak {format_bytes(peak.peak)}"


def _calibrate_bottleneck(
    cal: Calibration,
    config: Mapping[str, Any],
    jobs: Sequence[PlannedJob],
    sizes: Mapping[str, ModelSize],
) -> None:
    """The heads' training and the LM-head spectrum at each (vocabulary, width), each in a fresh
    process (the spectrum's memory scaled from the rows it measures to V)."""
    from repgeom.workflow.calibration import (
        LIGHT_IMPORTS,
        MODEL_IMPORTS,
        in_fresh_process,
        lm_head_rows,
        measure_heads,
        measure_lm_head,
    )

    for job in _jobs_of(jobs, "bottleneck_heads", "bottleneck_lm_head"):
        size = sizes.get(job.wildcards["model"])
        if size is None:
            continue
        key = (size.vocab_size, size.hidden_size)
        if job.rule == "bottleneck_heads" and key not in cal.heads_s:
            warm = (*MODEL_IMPORTS, "repgeom.bottleneck.checkpoint_heads")
            options = config["bottleneck"]["heads"]
            (t, u), peak = in_fresh_process(measure_heads, *key, options, warm=warm)
            cal.heads_s[key], cal.peaks[("heads", key)] = (t, u), peak
            print(
                f"  heads V={key[0]}, d={key[1]}: {t * 1e3:.1f} ms per token, {u:.1f} s per update"
                f"{_peak_note(peak)}"
            )
        if job.rule == "bottleneck_lm_head" and key not in cal.lm_head_s:
            warm = (*LIGHT_IMPORTS, "repgeom.bottleneck.spectrum")
            method = config["bottleneck"]["spectrum_method"]
            t, peak = in_fresh_process(measure_lm_head, *key, method, warm=warm)
            cal.lm_head_s[key] = t
            cal.peaks[("lm_head", key)] = peak.scaled(key[0] / lm_head_rows(*key))
            print(f"  LM-head spectrum V={key[0]}, d={key[1]}: {t:.2f} s{_peak_note(peak)}")


def _calibrate_training(
    cal: Calibration,
    config: Mapping[str, Any],
    jobs: Sequence[PlannedJob],
    sizes: Mapping[str, ModelSize],
) -> None:
    """Each trained model's step and checkpoint, and each Birth variant's iteration and
    evaluation, each in a fresh process (:func:`_birth_peak`)."""
    from repgeom.workflow.calibration import (
        TORCH_IMPORTS,
        in_fresh_process,
        measure_training,
        transformers_config,
    )

    for job in _jobs_of(jobs, "train_model"):
        name = job.rule.removeprefix("train_")
        if name not in sizes or name in cal.training_s:
            continue
        model = config["models"][name]
        cfg = transformers_config(model, config["tokenizers"])
        window = model_window(config, name)
        measured = in_fresh_process(
            measure_training, cfg, model["training"], window, warm=TORCH_IMPORTS
        )
        cal.training_s[name], cal.peaks[("training", name)] = measured
        step, checkpoint, _ = cal.training_s[name]
        print(
            f"  training {name}: {step:.3f} s per step, {checkpoint:.2f} s per checkpoint"
            f"{_peak_note(measured[1])}"
        )
    for job in _jobs_of(jobs, "birth_variant"):
        name = job.wildcards["variant"]
        if name not in cal.birth_s:
            settings = dataclasses.asdict(birth_variant(config, name))
            cal.birth_s[name], peak = _birth_peak(cal, name, settings)
            it, ev, _ = cal.birth_s[name]
            print(
                f"  Birth {name}: {it:.3f} s per iteration, {ev:.3f} s per evaluation"
                f"{_peak_note(peak)}"
            )


def _tokenizer_vocab(
    config: Mapping[str, Any], tokenizer: str, sizes: Mapping[str, ModelSize]
) -> int:
    """A tokenizer's vocabulary: its config's, else that of a model using it, else 0."""
    vocab = config["tokenizers"][tokenizer].get("vocab_size")
    users = [
        sizes[m].vocab_size
        for m, v in config["models"].items()
        if m in sizes and v["tokenizer"] == tokenizer
    ]
    return int(vocab or max(users, default=0))


def _corpora_to_sample(
    config: Mapping[str, Any], jobs: Sequence[PlannedJob]
) -> tuple[dict[str, str | None], set[tuple[str, str]]]:
    """(corpus -> the tokenizer its rates are measured with, None for a corpus only read; the
    (tokenizer, corpus) of every n-gram job) for the plan's corpus, tokenizer, tokens and
    n-gram jobs."""
    ngram = {
        (j.wildcards["tokenizer"], j.wildcards["corpus"])
        for j in _jobs_of(jobs, "bottleneck_ngram")
    }
    tokenized = [
        (j.wildcards["tokenizer"], j.wildcards["corpus"]) for j in _jobs_of(jobs, "tokens")
    ]
    for job in _jobs_of(jobs, "train_tokenizer"):
        tokenizer = job.wildcards["tokenizer"]
        tokenized.append((tokenizer, config["tokenizers"][tokenizer]["corpus"]))
    corpora: dict[str, str | None] = {
        j.wildcards["corpus"]: None for j in _jobs_of(jobs, "corpus", "languages_corpus")
    }
    for tokenizer, corpus in [*sorted(ngram), *tokenized]:
        corpora[corpus] = corpora.get(corpus) or tokenizer
    return corpora, ngram


def _birth_peak(
    cal: Calibration, name: str, settings: Mapping[str, Any]
) -> tuple[tuple[float, float, int], Peak]:
    """:func:`repgeom.workflow.calibration.measure_birth` of a variant in a fresh process (and,
    when its batches are larger than those measured, again at a quarter of those: the peak
    extrapolated from the two to its batches; recorded in ``cal.peaks``)."""
    from repgeom.workflow.calibration import (
        BIRTH_MAX_BATCH,
        TORCH_IMPORTS,
        in_fresh_process,
        measure_birth,
    )

    warm = (*TORCH_IMPORTS, "repgeom.birth.train")
    rates, peak = in_fresh_process(measure_birth, settings, warm=warm)
    batch = max(settings["batch_size"], settings["eval_batch_size"])
    cal.peaks[("birth", name)] = peak
    if batch > BIRTH_MAX_BATCH:
        part = BIRTH_MAX_BATCH // 4
        _, smaller = in_fresh_process(measure_birth, settings, max_batch=part, warm=warm)
        cal.peaks[("birth", name)] = peak.extrapolated(smaller, (part, BIRTH_MAX_BATCH), batch)
    return rates, peak


def _sample_corpus(
    cal: Calibration, corpus: str, spec: Mapping[str, Any]
) -> tuple[list[str], float, float]:
    """:func:`repgeom.workflow.calibration.corpus_sample` of a corpus in a fresh process, and of
    a quarter of that sample: the corpus job's peak extrapolated from the two to the whole
    corpus."""
    from repgeom.workflow.calibration import LIGHT_IMPORTS, corpus_sample, in_fresh_process

    warm = (*LIGHT_IMPORTS, "repgeom.data.corpus")
    (docs, seconds, scale), peak = in_fresh_process(corpus_sample, spec, warm=warm)
    if docs:
        (_, _, part), smaller = in_fresh_process(corpus_sample, spec, 80, 64_000, warm=warm)
        cal.peaks[("corpus", corpus)] = peak.extrapolated(smaller, (1 / part, 1 / scale), 1.0)
    return docs, seconds, scale


def _tokenize_sample(
    cal: Calibration, corpus: str, sample: tuple[list[str], float, float], vocab: int
) -> Any:
    """:func:`repgeom.workflow.calibration.measure_corpus` of a corpus's sample (``docs``, the
    seconds reading them, the factor to the whole corpus): when it is tokenized, in a fresh
    process with torch (as a tokens job loads its tokenizer), and again on a quarter of the
    documents, the peak extrapolated from the two to the whole corpus; the sample's token ids
    (None when it is only read)."""
    from repgeom.workflow.calibration import TORCH_IMPORTS, in_fresh_process, measure_corpus

    docs, seconds, scale = sample
    if not vocab or not docs:
        cal.corpora[corpus], ids = measure_corpus(docs, seconds, scale, vocab)
        return ids
    warm = (*TORCH_IMPORTS, "repgeom.data.tokenization", "repgeom.data.tokens")
    (cal.corpora[corpus], ids), peak = in_fresh_process(
        measure_corpus, docs, seconds, scale, vocab, warm=warm
    )
    part = docs[: max(1, len(docs) // 4)]
    _, smaller = in_fresh_process(measure_corpus, part, seconds, scale, vocab, warm=warm)
    sizes = (sum(map(len, part)), sum(map(len, docs)))
    cal.peaks[("tokens", corpus)] = peak.extrapolated(smaller, sizes, sizes[1] * scale)
    return ids


def _calibrate_ngram(
    cal: Calibration, config: Mapping[str, Any], key: tuple[str, str], ids: Any, vocab: int
) -> None:
    """The n-gram W-error of a (tokenizer, corpus) on the sample's token ids, in a fresh
    process, and on a quarter of them: its peak extrapolated from the two to the tokens the
    job counts."""
    import numpy as np

    from repgeom.workflow.calibration import LIGHT_IMPORTS, in_fresh_process, measure_ngram

    sample = np.asarray(ids, dtype=np.int32)
    warm = (*LIGHT_IMPORTS, "repgeom.bottleneck.ngram_werror")
    options = config["bottleneck"]["ngram"]
    cal.ngram_s[key], peak = in_fresh_process(measure_ngram, sample, vocab, options, warm=warm)
    part = sample[: len(sample) // 4]
    _, smaller = in_fresh_process(measure_ngram, part, vocab, options, warm=warm)
    tokens = ngram_tokens(Costing(config, cal, {}), key[1])
    cal.peaks[("ngram", key)] = peak.extrapolated(smaller, (len(part), len(sample)), tokens)
    fixed, per_token = cal.ngram_s[key]
    print(
        f"  n-grams {key[0]} × {key[1]}: {fixed:.1f} s + {per_token * 1e6:.1f} µs per token"
        f"{_peak_note(peak)}"
    )


def _calibrate_corpora(
    cal: Calibration,
    config: Mapping[str, Any],
    jobs: Sequence[PlannedJob],
    sizes: Mapping[str, ModelSize],
) -> None:
    """Each corpus's size and rates from a sample of its text, and the n-gram W-error on it."""
    corpora, ngram = _corpora_to_sample(config, jobs)
    for corpus, tokenizer in corpora.items():
        sample = _sample_corpus(cal, corpus, config["corpora"][corpus])
        vocab = _tokenizer_vocab(config, tokenizer, sizes) if tokenizer else 0
        ids = _tokenize_sample(cal, corpus, sample, vocab)
        rates = cal.corpora[corpus]
        if rates.chars:
            print(
                f"  corpus {corpus}: about {rates.chars / 1e6:.2f}M characters, "
                f"{rates.tokens_per_char:.2f} tokens each"
            )
        for tok, _ in sorted(p for p in ngram if p[1] == corpus and ids):
            _calibrate_ngram(cal, config, (tok, corpus), ids, _tokenizer_vocab(config, tok, sizes))


def _calibrate_languages(
    cal: Calibration,
    config: Mapping[str, Any],
    jobs: Sequence[PlannedJob],
    sizes: Mapping[str, ModelSize],
) -> None:
    """The languages metrics at each store shape, in a fresh process."""
    from repgeom.workflow.calibration import in_fresh_process, measure_languages

    for job in _jobs_of(jobs, "languages_metrics"):
        size = sizes.get(job.wildcards["model"])
        if size is None or languages_key(config, size) in cal.languages_s:
            continue
        key = languages_key(config, size)
        measured = in_fresh_process(measure_languages, *key, config["languages"])
        cal.languages_s[key], cal.peaks[("languages", key)] = measured
        store, pair = cal.languages_s[key]
        print(
            f"  languages d={key[0]}, {key[1]} sentences: {store:.2f} s per store and layer, "
            f"{pair:.2f} s per pair set and layer{_peak_note(measured[1])}"
        )


def _calibrate_jobs(cal: Calibration, jobs: Sequence[PlannedJob]) -> None:
    """What every job without torch, every figure and the checkpoint weights' jobs pay (the
    reads and the weights each in a fresh process)."""
    from repgeom.workflow.calibration import (
        in_fresh_process,
        measure_light_startup,
        measure_plots,
        measure_reads,
        measure_weights,
    )

    cal.light_startup_s, cal.light_startup_rss = measure_light_startup()
    cal.read_s_per_file, cal.peaks[("reads", None)] = in_fresh_process(measure_reads)
    print(
        f"  a job without torch: start-up {cal.light_startup_s:.1f} s "
        f"({format_bytes(cal.light_startup_rss)}), {cal.read_s_per_file * 1e3:.0f} ms per "
        f"dataset read{_peak_note(cal.peaks[('reads', None)])}"
    )
    if any(rule_cost(j.rule).stage == "figures and tables" for j in jobs):
        cal.plot_import_s, cal.figure_s, cal.figure_rss = measure_plots()
        print(
            f"  figures: matplotlib {cal.plot_import_s:.1f} s, {cal.figure_s:.2f} s per figure, "
            f"peak {format_bytes(cal.figure_rss)}"
        )
    if _jobs_of(jobs, "fingerprint", "weights", "manifest"):
        rates, peak = in_fresh_process(measure_weights)
        (cal.hash_s_per_byte, cal.distance_s_per_byte), cal.peaks[("weights", None)] = rates, peak
        print(
            f"  weights: hashed at {1e-6 / cal.hash_s_per_byte:.0f} MB/s, "
            f"distances at {1e-6 / cal.distance_s_per_byte:.0f} MB/s{_peak_note(peak)}"
        )


def calibrate(
    config: Mapping[str, Any],
    jobs: Sequence[PlannedJob],
    sizes: Mapping[str, ModelSize],
    flags: Mapping[tuple[str, str], tuple[bool, int | None]],
) -> Calibration:
    """Everything the plan's jobs are costed from, measured on this machine (printing each;
    without progress bars when the output is not a terminal)."""
    from repgeom.workflow.calibration import (
        measure_model_startup,
        measure_startup,
        no_progress_bars,
    )

    for job in jobs:  # a rule without a cost function stops here, before any measurement
        rule_cost(job.rule)
    with no_progress_bars(not sys.stdout.isatty()):
        seconds, rss = measure_startup()
        cal = Calibration(startup_s=seconds, startup_rss=rss)
        cal.model_startup_rss = measure_model_startup()[1]
        print(
            f"calibrating on this machine (one thread per job); start-up {cal.startup_s:.1f} s "
            f"({format_bytes(cal.startup_rss)}; {format_bytes(cal.model_startup_rss)} for a job "
            "loading a checkpoint)"
        )
        _calibrate_jobs(cal, jobs)
        _calibrate_extraction(cal, config, jobs, sizes, flags)
        for step in (
            _calibrate_metrics,
            _calibrate_bottleneck,
            _calibrate_training,
            _calibrate_corpora,
            _calibrate_languages,
        ):
            step(cal, config, jobs, sizes)
    return cal


# ---- the command


def _arguments(argv: Sequence[str] | None) -> Any:
    """The command line."""
    import argparse
    import os

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
    return parser.parse_args(argv)


def _planned_passes(
    configfile: str | Path, root: Path
) -> tuple[dict[str, Any], dict[tuple[str, str], tuple[bool, int | None]], str | None]:
    """(the config, the passes each store pays for, the corpus the rank-restricted heads read),
    from the run's one plan (:func:`repgeom.workflow.run.plan_run`, as the rules read it)."""
    from repgeom.workflow.config import load_config_file
    from repgeom.workflow.run import plan_run

    run = plan_run(load_config_file(configfile), schema=root / "config" / "schema.yaml")
    print(f"studies: {run.summary()}")
    flags = {}
    for m in run.config["models"]:
        for c in run.config["corpora"]:
            passes = run.store_passes(m, c)
            lens = passes.get("logit_lens")
            flags[(m, c)] = (
                bool(passes.get("eval_loss")),
                None if lens is None else lens["tokens"],
            )
    return dict(run.config), flags, run.studies["bottleneck"]["heads_corpus"]


def _model_sizes(config: Mapping[str, Any]) -> tuple[dict[str, ModelSize], int]:
    """Each model's shape (those without one named and left out) and the HF cache its hub
    revisions take."""
    from repgeom.workflow.calibration import model_size, transformers_config

    sizes, cache = {}, 0
    for name, model in config["models"].items():
        cfg = transformers_config(model, config["tokenizers"])
        if cfg is None:
            print(f"model {name!r}: no config.json and no published dims: not projected")
            continue
        sizes[name] = model_size(cfg)
        if model["source"] == "hub":
            cache += len(model["revisions"]) * weights_bytes(sizes[name])
    return sizes, cache


def _gpu_rate(measured: float | None) -> tuple[float, str]:
    """The GPU's FLOP/s and how it is known."""
    if measured:
        return measured, f"measured {measured / 1e12:.0f} TFLOP/s"
    return GPU_FLOPS, (
        f"assumed {GPU_FLOPS / 1e12:.0f} TFLOP/s, 30 % of an H100's bf16 peak, no GPU measured"
    )


def _write_json(
    path: str | Path, stages: Mapping[str, StageCost], cores: int, calibration: Calibration
) -> None:
    """The projection per stage, the wall times and the calibration, as JSON."""
    import json

    def keyed(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): keyed(v) for k, v in value.items()}
        return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value

    out = {
        "cores": cores,
        "wall_s": wall(stages, cores),
        "gpu_wall_s": wall(stages, cores, gpu=True),
        "calibration": {
            f.name: keyed(getattr(calibration, f.name)) for f in dataclasses.fields(calibration)
        },
        "stages": {k: dataclasses.asdict(v) for k, v in stages.items()},
    }
    Path(path).write_text(json.dumps(out, indent=1))


def main(argv: Sequence[str] | None = None) -> None:
    """python -m repgeom.workflow.footprint CONFIG [--cores N] [--gpu-flops F]"""
    args = _arguments(argv)
    root = Path(__file__).resolve().parents[3]
    config, flags, heads_corpus = _planned_passes(args.config, root)
    jobs = plan_jobs(args.config, args.directory, root / "Snakefile")
    sizes, cache = _model_sizes(config)
    calibration = calibrate(config, jobs, sizes, flags)
    gpu, note = _gpu_rate(args.gpu_flops)
    stages = project(config, jobs, calibration, sizes, flags, gpu, heads_corpus)
    print()
    print(report(stages, args.cores, cache, note))
    if args.json:
        _write_json(args.json, stages, args.cores, calibration)
