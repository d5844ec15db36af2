import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from repgeom.config import (
    canonical,
    ConfigError,
    check_references,
    check_schema,
    text_corpus_missing,
)
from repgeom.codehash import code_hash
from repgeom.download import ensure
from repgeom.locate import check_hub_revision
from repgeom import plan

ROOT = Path(workflow.basedir)
SCHEMA = str(ROOT / "config" / "schema.yaml")
RESULTS = "results"
LOGS = "logs"
BENCH = "benchmarks/runs"


def code(script):
    """Hash of the repgeom modules a script uses: editing them reruns the rule's jobs."""
    return code_hash(ROOT / "scripts" / script)


def stop(message):
    """Stop before any job with a message naming what is wrong."""
    sys.stderr.write(f"\nrepgeom: {message}\n\n")
    raise WorkflowError(message)


try:
    check_schema(config, SCHEMA)
except ConfigError as err:
    stop(str(err))
validate(config, SCHEMA, set_default=True)
_canonical = canonical(config)
config.clear()
config.update(_canonical)
try:
    check_references(config)
except ConfigError as err:
    stop(str(err))

CORPORA = config["corpora"]
TOKENIZERS = config["tokenizers"]
MODELS = config["models"]
TEXT_CORPORA = [c for c, v in CORPORA.items() if v["kind"] != "random_tokens"]


def _prepare_inputs():
    """Downloads pinned text corpora, checks local paths and hub revisions before any job."""
    for name, corpus in CORPORA.items():
        missing = text_corpus_missing(name, corpus)
        if missing and corpus.get("url"):
            try:
                ensure(corpus["path"], corpus["url"], corpus.get("sha256"))
                missing = None
            except Exception as err:
                missing = f"{missing} (download failed: {err})"
        if missing:
            stop(missing)
    resolved = {}
    for name, model in MODELS.items():
        if model["source"] == "local" and not Path(model["path"]).exists():
            stop(f"config key 'models.{name}.path': {model['path']} does not exist")
        if model["source"] == "hub":
            for rev in model["revisions"]:
                try:
                    resolved[(name, rev)] = check_hub_revision(model["id"], rev)
                except LookupError as err:
                    stop(f"config key 'models.{name}.revisions': {err}")
    return resolved


HUB_COMMITS = _prepare_inputs()
STEPS = {m: plan.model_steps(v) for m, v in MODELS.items()}
EXTRACT_CORPORA = plan.extraction_corpora(config)


wildcard_constraints:
    corpus="[^/]+",
    model="[^/]+",
    step="[^/]+",
    tokenizer="[^/]+",
    metric="[^/]+",


def corpus_dir(name):
    return f"{RESULTS}/corpora/{name}"


def tokens_path(tokenizer, corpus):
    return f"{RESULTS}/tokens/{tokenizer}/{corpus}.zarr"


def tokenizer_dir(tokenizer):
    """The trained tokenizer's directory (a model's own tokenizer needs no job)."""
    if TOKENIZERS[tokenizer]["kind"] == "train":
        return f"{RESULTS}/tokenizers/{tokenizer}"
    return []


def activations(model, step, corpus):
    return f"{RESULTS}/activations/{model}/{step}/{corpus}.zarr"


def model_tokens(model, corpus):
    return tokens_path(MODELS[model]["tokenizer"], corpus)


def checkpoint_input(wildcards):
    """The checkpoint directory a trained or local model's job reads (hub models read the cache)."""
    model = MODELS[wildcards.model]
    if model["source"] == "hub":
        return []
    return plan.checkpoint_location(wildcards.model, model, wildcards.step, RESULTS)[0]


def model_source(name, step):
    """Where the job loads a checkpoint from, with the hub commit it resolves to."""
    model = MODELS[name]
    path, revision = plan.checkpoint_location(name, model, step, RESULTS)
    return {"path": path, "revision": revision, "commit": HUB_COMMITS.get((name, step))}


def per_checkpoint(pattern, **extra):
    """Expand a path over every (model, step, extraction corpus)."""
    return [
        pattern.format(model=m, step=s, corpus=c, **extra)
        for m in MODELS
        for s in STEPS[m]
        for c in EXTRACT_CORPORA
    ]


def corpus_files(wildcards):
    """Local text files a text corpus reads (so that editing them reruns the corpus)."""
    corpus = CORPORA[wildcards.corpus]
    if corpus["kind"] != "text":
        return []
    from repgeom.corpus import resolve_text_paths

    return [str(p) for p in resolve_text_paths(corpus["path"])]


def tokens_inputs(wildcards):
    """A text corpus's documents and the trained tokenizer, when there are any."""
    inputs = {"tokenizer": tokenizer_dir(wildcards.tokenizer)}
    if CORPORA[wildcards.corpus]["kind"] != "random_tokens":
        inputs["train"] = f"{corpus_dir(wildcards.corpus)}/train.jsonl"
        inputs["eval"] = f"{corpus_dir(wildcards.corpus)}/eval.jsonl"
        inputs["stats"] = f"{corpus_dir(wildcards.corpus)}/stats.json"
    return inputs


def tokenizer_source(name):
    """Where a tokenizer is loaded from: its trained directory, or a model's hub id or path."""
    tok = TOKENIZERS[name]
    if tok["kind"] == "train":
        return {"path": f"{RESULTS}/tokenizers/{name}", "revision": None}
    model = MODELS[tok["model"]]
    return model_source(tok["model"], STEPS[tok["model"]][-1])
