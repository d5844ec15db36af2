import collections
import dataclasses
import functools
import json
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

from repgeom.workflow.config import (
    ConfigError,
    check_references,
    load_config,
    load_config_file,
    matching_files,
    text_corpus_missing,
)
from repgeom.workflow.codehash import code_hash
from repgeom.provenance import config_hash
from repgeom.workflow import plan
from repgeom.workflow.paths import PATHS
from repgeom.steps import last_checkpoint, unnumbered_warning

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
_missing = []  # FLORES and pairs files that are not here
try:
    # Snakemake's YAML loading keeps the last of a key given twice; a config says each thing
    # once, so the files it was given (--configfile, else the embedded default) are read again
    for _configfile in workflow.configfiles:
        load_config_file(_configfile)
    _config = plan.unnamed_sections(load_config(config, SCHEMA), RAW_CONFIG)
    # a study's own corpus kinds (the languages study's flores, minimal pairs, synthetic) expand
    # into aligned corpora, one per language or side; from here on they are ordinary corpora
    for _expand in plan.study_hooks("expand_corpora"):
        _config["corpora"] = _expand(_config["corpora"], _missing)
    check_references(_config)
except ConfigError as err:
    stop(str(err))
config.clear()
config.update(_config)
# a study runs when the config names its section; the core metrics run on every store
NAMED_STUDIES = plan.named_studies(RAW_CONFIG)
sys.stderr.write(
    "repgeom: studies: "
    + "; ".join(f"{k} {why}" for k, why in NAMED_STUDIES.items())
    + "; the core metrics (geometry, similarity, checkpoint integrity) run on every store\n"
)
CORPORA = config["corpora"]
TOKENIZERS = config["tokenizers"]
MODELS = config["models"]
DISK = config["disk"]
# hub commits, whether this run downloads each revision, and what is missing
HUB_COMMITS, HUB_DOWNLOADED, _absent = plan.check_inputs(
    config, PATHS, online=not DRY_RUN
)
for _message in _missing + _absent:
    missing_input(_message)
# every model against its tokenizer (window within its context, ids within its embedding)
_mismatched = plan.model_tokenizer_problems(config)
if _mismatched:
    stop("\n".join(_mismatched))
# checkpoints of every model ordered by training step (a label without one is warned about)
CHECKPOINTS = {}
for _name, _model in MODELS.items():
    try:
        CHECKPOINTS[_name], _unnumbered = plan.model_checkpoints(_model)
    except OSError as err:
        stop(f"config key 'models.{_name}.path': {err}")
    if _unnumbered:
        _key = "revisions" if _model["source"] == "hub" else "steps"
        warn(unnumbered_warning(_name, _unnumbered, f"models.{_name}.{_key}"))
    for _note in plan.link_notes(_name, _model):
        warn(_note)
STEPS = {m: [c.label for c in v] for m, v in CHECKPOINTS.items()}
# the last checkpoint of every model: never a label without a step while numbered ones exist
LAST = {m: last_checkpoint(v).label for m, v in CHECKPOINTS.items()}
# what gathering jobs record on their step dim (label, step, tokens seen)
CHECKPOINT_PARAMS = {
    m: [dataclasses.asdict(c) for c in v] for m, v in CHECKPOINTS.items()
}
EXTRACT_CORPORA = plan.extraction_corpora(config)
# models whose checkpoints get the spine and geometry (none when no corpus is extracted)
GEOMETRY_MODELS = list(MODELS) if EXTRACT_CORPORA else []

# Hooks the studies' rules fill as they are read: the outputs of the jobs that load each
# checkpoint, and the corpora each tokenizer tokenizes. The release of a hub revision
# (rules/hub.smk, read last) waits for all of them.
CHECKPOINT_READERS = collections.defaultdict(list)
TOKENIZED = collections.defaultdict(list)


def reads_checkpoint(model, step, outputs):
    """Declare outputs of jobs that load a checkpoint's weights."""
    CHECKPOINT_READERS[(model, step)] += list(outputs)


def tokenizes(tokenizer, corpora):
    """Declare corpora tokenized with a tokenizer."""
    TOKENIZED[tokenizer] += [c for c in corpora if c not in TOKENIZED[tokenizer]]


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
    """Whether one store gets the next-token eval loss (EVAL_LOSS: rules/extract.smk)."""
    return w.corpus in EVAL_LOSS[w.model]


def store_lens(w):
    """The logit lens's token budget and seed for one store, or None when it gets no lens
    (LENS, LENS_MODELS: rules/logit_lens.smk)."""
    if w.model in LENS_MODELS and w.corpus in EXTRACT_CORPORA:
        return {k: v for k, v in LENS.items() if k != "models"}
    return None


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


# Final artifacts: the inputs of every study's target rule.
STUDIES = ["spine", *plan.STUDIES]


def _studies():
    defined = {r.name for r in workflow.rules}
    return [name for name in STUDIES if name in defined]


def manifest_targets(wildcards=None):
    """Every final artifact of every study and every activation store the run keeps (none
    with disk.temporary_activations: those are deleted), sorted; the manifest lists a store
    chunk by chunk."""
    targets = {str(f) for name in _studies() for f in getattr(rules, name).input}
    if not DISK["temporary_activations"]:
        targets |= {
            PATHS.activations(m, s, c)
            for m in GEOMETRY_MODELS
            for s in STEPS[m]
            for c in EXTRACT_CORPORA
        }
        # the languages study's aligned corpora at the checkpoints it reads (languages.smk)
        targets |= {
            PATHS.activations(m, s, c)
            for m, s in LANGUAGE_CHECKPOINTS
            for c in LANGUAGE_CORPORA
        }
    return sorted(targets)


def producers(paths):
    """path -> (name, code hash) of the rule that writes it."""
    skip = set(STUDIES) | {"all", "manifest"}
    out = {}
    for path in paths:
        producer = next(
            r for r in workflow.rules if r.name not in skip and r.is_producer(path)
        )
        out[path] = (producer.name, getattr(producer.params, "code", ""))
    return out
