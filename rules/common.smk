import json
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

from repgeom.workflow.config import (
    ConfigError,
    load_config_file,
    matching_files,
    text_corpus_missing,
)
from repgeom.workflow.codehash import code_hash
from repgeom.provenance import config_hash
from repgeom.workflow import plan
from repgeom.workflow.run import plan_run
from repgeom.workflow.paths import PATHS

ROOT = Path(workflow.basedir)
SCHEMA = str(ROOT / "config" / "schema.yaml")
# a dry run plans from the config alone: data and models that are not here are warnings
DRY_RUN = bool(getattr(workflow.output_settings, "dryrun", False))


def code(script):
    """Hash of the repgeom modules a script uses: editing them reruns the rule's jobs."""
    return code_hash(ROOT / "scripts" / script)


def stop(message):
    """Stop before any job with a message naming what is wrong."""
    sys.stderr.write(f"\nrepgeom: {message}\n\n")
    raise WorkflowError(message)


def warn(message):
    """A warning printed once when the workflow is planned."""
    sys.stderr.write(f"\nrepgeom: warning: {message}\n")


def missing_input(message):
    """Stop before any job; a dry run only warns, so that configs needing data or models that
    are not here (the paper configs, offline) can still list their jobs."""
    if DRY_RUN:
        warn(f"(a real run stops here) {message}")
        return
    stop(message)


RAW_CONFIG = json.loads(json.dumps(config))  # as written, before defaults
try:
    # Snakemake's YAML loading keeps the last of a key given twice; a config says each thing
    # once, so the files it was given (--configfile, else the embedded default) are read again
    for _configfile in workflow.configfiles:
        load_config_file(_configfile)
    # the one plan of the run (repgeom.workflow.run): every rule below reads it
    RUN = plan_run(RAW_CONFIG, PATHS, SCHEMA)
except ConfigError as err:
    stop(str(err))
config.clear()
config.update(RUN.config)
# a study runs when the config names its section; the core metrics run on every store
sys.stderr.write(f"repgeom: studies: {RUN.summary()}\n")
CORPORA = config["corpora"]
TOKENIZERS = config["tokenizers"]
MODELS = config["models"]
DISK = config["disk"]
# hub commits, whether this run downloads each revision, and what is missing
HUB_COMMITS, HUB_DOWNLOADED, _absent = plan.check_inputs(
    config, PATHS, online=not DRY_RUN
)
for _message in [*RUN.missing, *_absent]:
    missing_input(_message)
# every model against its tokenizer (window within its context, ids within its embedding)
_mismatched = plan.model_tokenizer_problems(config)
if _mismatched:
    stop("\n".join(_mismatched))
for _note in RUN.notes:
    warn(_note)
STEPS = RUN.steps
# the last checkpoint of every model: never a label without a step while numbered ones exist
LAST = RUN.last
CHECKPOINT_PARAMS = RUN.checkpoint_params
EXTRACT_CORPORA = list(RUN.extract_corpora)
# models whose checkpoints get the spine and geometry (none when no corpus is extracted)
GEOMETRY_MODELS = RUN.geometry_models


wildcard_constraints:
    corpus="[^/]+",
    model="[^/]+",
    step="[^/]+",
    tokenizer="[^/]+",
    metric="[^/]+",


def tokenizer_dir(tokenizer):
    """The trained tokenizer's directory (a model's own tokenizer needs no job)."""
    if TOKENIZERS[tokenizer]["kind"] == "train":
        return PATHS.tokenizer(tokenizer)
    return []


def model_tokens(model, corpus):
    return PATHS.tokens(MODELS[model]["tokenizer"], corpus)


def checkpoint_input(wildcards):
    """The checkpoint directory a trained or local model's job reads (hub models read the cache)."""
    model = MODELS[wildcards.model]
    if model["source"] == "hub":
        return []
    return plan.checkpoint_location(wildcards.model, model, wildcards.step, PATHS)[0]


def model_source(name, step):
    """Where the job loads a checkpoint from, with the hub commit it resolves to, and the
    objective it is loaded with (auto: what its config.json declares)."""
    model = MODELS[name]
    path, revision = plan.checkpoint_location(name, model, step, PATHS)
    return {
        "path": path,
        "revision": revision,
        "commit": HUB_COMMITS.get((name, step)),
        "objective": model["objective"],
    }


def store_eval_loss(w):
    """Whether one store gets the next-token eval loss."""
    return bool(RUN.store_passes(w.model, w.corpus).get("eval_loss", False))


def store_lens(w):
    """The logit lens's token budget and seed for one store, or None when it gets no lens."""
    return RUN.store_passes(w.model, w.corpus).get("logit_lens")


def corpus_files(wildcards):
    """Local text files a text corpus reads (so that editing them reruns the corpus)."""
    corpus = CORPORA[wildcards.corpus]
    if corpus["kind"] != "text":
        return []
    if text_corpus_missing(wildcards.corpus, corpus):
        # written by the corpus's download rule; without a url only a dry run gets here (a
        # real run stopped before any job), and the job is planned without its files
        return [corpus["path"]] if corpus.get("url") else []
    return [str(p) for p in matching_files(corpus["path"])]


def tokens_inputs(wildcards):
    """A text corpus's documents and the trained tokenizer, when there are any."""
    inputs = {"tokenizer": tokenizer_dir(wildcards.tokenizer)}
    if CORPORA[wildcards.corpus]["kind"] != "random_tokens":
        for split in ("train", "eval"):
            inputs[split] = PATHS.corpus(wildcards.corpus, f"{split}.jsonl")
        inputs["stats"] = PATHS.corpus(wildcards.corpus, "stats.json")
    return inputs


def tokenizer_source(name):
    """Where a tokenizer is loaded from: its trained directory, or a model's hub id or path."""
    tok = TOKENIZERS[name]
    if tok["kind"] == "train":
        return {"path": PATHS.tokenizer(name), "revision": None}
    model = MODELS[tok["model"]]
    return model_source(tok["model"], LAST[tok["model"]])


def integrity_released(model):
    """Whether a hub model's revisions are downloaded one at a time and released by this run
    (disk.release_hub_revisions): its gate then comes before its gathers, not its extraction,
    and its distances are not measured (they read every revision at once)."""
    return (
        DISK["release_hub_revisions"]
        and MODELS[model]["source"] == "hub"
        and any(HUB_DOWNLOADED.get((model, s), False) for s in STEPS[model])
    )


def integrity_gate(wildcards):
    """The integrity dataset extraction of a model waits for (none for released revisions)."""
    if integrity_released(wildcards.model):
        return []
    return PATHS.integrity(wildcards.model)


def labels_key(model):
    """The config key a model's checkpoint labels are listed under."""
    source = MODELS[model]["source"]
    if source == "train":
        return "training.checkpoints"
    return "revisions" if source == "hub" else "steps"


def checkpoint_dirs(model):
    """The checkpoint directories of a trained or local model (hub models read the cache)."""
    if MODELS[model]["source"] == "hub":
        return []
    return [
        plan.checkpoint_location(model, MODELS[model], s, PATHS)[0]
        for s in STEPS[model]
    ]


def activation_output(path):
    """An activation store output, temp() when disk.temporary_activations is on."""
    return temp(directory(path)) if DISK["temporary_activations"] else directory(path)


def manifest_targets(wildcards=None):
    """Every final artifact of every study and every activation store the run keeps (none
    with disk.temporary_activations: those are deleted), sorted; the manifest lists a store
    chunk by chunk."""
    targets = {str(f) for f in rules.spine.input} | set(RUN.targets)
    if not DISK["temporary_activations"]:
        targets |= {PATHS.activations(m, s, c) for m, s, c in RUN.kept_stores}
    return sorted(targets)


def producers(paths):
    """path -> (name, code hash) of the rule that writes it."""
    skip = {"spine", *RUN.studies, "all", "manifest"}
    out = {}
    for path in paths:
        producer = next(
            r for r in workflow.rules if r.name not in skip and r.is_producer(path)
        )
        out[path] = (producer.name, getattr(producer.params, "code", ""))
    return out
