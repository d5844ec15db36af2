import functools
import json
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from repgeom.config import (
    canonical,
    load_schema,
    with_defaults,
    ConfigError,
    check_references,
    check_schema,
    text_corpus_missing,
)
from repgeom.checkpoint import checkpoint_size
from repgeom.codehash import code_hash
from repgeom.footprint import extraction_bytes
from repgeom.provenance import config_hash
from repgeom.download import ensure
from repgeom.languages.corpora import derived_inputs, expand_corpora
from repgeom.languages import plan as languages_plan
from repgeom.locate import check_hub_revision, hub_weights_cached
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


# a dry run plans from the config alone: data and models that are not here are warnings
DRY_RUN = bool(getattr(workflow.output_settings, "dryrun", False))


def missing_input(message):
    """Stop before any job; a dry run only warns, so that configs needing data or models that
    are not here (the paper configs, offline) can still list their jobs."""
    if DRY_RUN:
        sys.stderr.write(f"\nrepgeom: warning (a real run stops here): {message}\n")
        return
    stop(message)


RAW_CONFIG = json.loads(json.dumps(config))  # as written, before defaults
try:
    check_schema(config, SCHEMA)
except ConfigError as err:
    stop(str(err))
validate(config, SCHEMA, set_default=True)
_canonical = canonical(with_defaults(config, load_schema(SCHEMA)))
config.clear()
config.update(_canonical)
_missing_data = []
try:
    # corpus kinds of the languages study (flores, minimal pairs, synthetic) expand into
    # aligned corpora, one per language or side; from here on they are ordinary corpora
    config["corpora"] = expand_corpora(config["corpora"], _missing_data)
    check_references(config)
except ConfigError as err:
    stop(str(err))
for _message in _missing_data:
    missing_input(_message)

CORPORA = config["corpora"]
TOKENIZERS = config["tokenizers"]
MODELS = config["models"]


def _prepare_inputs():
    """Downloads pinned text corpora, checks local paths and hub revisions before any job."""
    for name, corpus in CORPORA.items():
        missing = text_corpus_missing(name, corpus)
        if missing and corpus.get("url") and not DRY_RUN:
            try:
                ensure(corpus["path"], corpus["url"], corpus.get("sha256"))
                missing = None
            except Exception as err:
                missing = f"{missing} (download failed: {err})"
        if missing:
            missing_input(missing)
    resolved = {}
    for name, model in MODELS.items():
        if model["source"] == "local" and not Path(model["path"]).exists():
            missing_input(
                f"config key 'models.{name}.path': {model['path']} does not exist"
            )
        if model["source"] == "hub":
            for rev in model["revisions"]:
                released = hub_release_record(name, rev)
                if released is not None:  # removed from the cache after its last job
                    resolved[(name, rev)] = released["commit"]
                    HUB_DOWNLOADED[(name, rev)] = released["downloaded"]
                    continue
                HUB_DOWNLOADED[(name, rev)] = not hub_weights_cached(model["id"], rev)
                try:
                    resolved[(name, rev)] = check_hub_revision(
                        model["id"], rev, online=not DRY_RUN
                    )
                except LookupError as err:
                    missing_input(f"config key 'models.{name}.revisions': {err}")
    return resolved


DISK = config["disk"]
# (model, revision) -> whether this workflow downloads its weights (not in the cache now)
HUB_DOWNLOADED = {}


def hub_release_path(model, step):
    return f"{RESULTS}/hub/{model}/{step}.json"


def hub_release_record(model, step):
    """What release_hub_revision recorded for a revision, when disk.release_hub_revisions
    is on and it ran; None otherwise."""
    path = Path(hub_release_path(model, step))
    if not DISK["release_hub_revisions"] or not path.is_file():
        return None
    return json.loads(path.read_text())


HUB_COMMITS = _prepare_inputs()
STEPS = {m: plan.model_steps(v) for m, v in MODELS.items()}
# whether each model's extraction computes the eval loss (models with a causal LM head)
EVAL_LOSS, _errors = plan.eval_loss_models(config)
if _errors:
    stop("invalid config:\n  " + "\n  ".join(_errors))
EXTRACT_MEM_MB = 6000  # when the checkpoint's size is not on disk yet


@functools.cache
def extract_mem_mb(model, step, corpus):
    """Memory of one extraction job, from the checkpoint's size when it is on disk."""
    size = None
    if MODELS[model]["source"] != "train":
        size = checkpoint_size(MODELS[model], step)
    if size is None:
        return EXTRACT_MEM_MB
    need = extraction_bytes(
        size,
        config["extraction"]["dtype"],
        config["extraction"]["batch_size"],
        TOKENIZERS[MODELS[model]["tokenizer"]]["window"],
        EVAL_LOSS[model],
        CORPORA[corpus].get("windows") == "document",
    )
    return max(2000, -(-need // 2**20))


EXTRACT_CORPORA = plan.extraction_corpora(config)
# models whose checkpoints get the spine and geometry (none when no corpus is extracted)
GEOMETRY_MODELS = list(MODELS) if EXTRACT_CORPORA else []


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
    """Where the job loads a checkpoint from, with the hub commit it resolves to, and the
    objective it is loaded with (auto: what its config.json declares)."""
    model = MODELS[name]
    path, revision = plan.checkpoint_location(name, model, step, RESULTS)
    return {
        "path": path,
        "revision": revision,
        "commit": HUB_COMMITS.get((name, step)),
        "objective": model["objective"],
    }


def corpus_files(wildcards):
    """Local text files a text corpus reads (so that editing them reruns the corpus)."""
    corpus = CORPORA[wildcards.corpus]
    if corpus["kind"] != "text":
        return []
    from repgeom.corpus import resolve_text_paths

    if corpus.get("url") and text_corpus_missing(wildcards.corpus, corpus):
        return [corpus["path"]]  # written by the corpus's download rule
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


# languages study

# the aligned corpora have their own corpus rule (languages_corpus), so that editing the
# study's readers reruns them and not the spine's corpora
ALIGNED_CORPORA = [c for c, v in CORPORA.items() if v["kind"] == "aligned"]
ALIGNED_CORPUS_PATTERN = "|".join(re.escape(c) for c in ALIGNED_CORPORA) or "(?!)"


def languages_corpus_inputs(wildcards):
    """What an aligned corpus is made from: FLORES files, a pairs file, or a source corpus."""
    return derived_inputs(CORPORA[wildcards.corpus], RESULTS)


try:
    LANGUAGE_GROUPS, LANGUAGE_PAIRS = languages_plan.study_groups(
        config["languages"], CORPORA
    )
    LANGUAGE_CHECKPOINTS = languages_plan.study_checkpoints(config["languages"], STEPS)
except ConfigError as err:
    stop(str(err))
LANGUAGE_CORPORA = languages_plan.study_corpora(LANGUAGE_GROUPS, LANGUAGE_PAIRS)
if not LANGUAGE_CORPORA:
    LANGUAGE_CHECKPOINTS = []
# the options that shape the study's numbers (groups and pairs go separately; models, steps
# and scores only choose what is built, so editing them reruns nothing already made)
LANGUAGE_OPTIONS = {
    k: v
    for k, v in config["languages"].items()
    if k not in ("groups", "grammaticality", "models", "steps", "scores")
}
LANGUAGE_SCORES = config["languages"]["scores"]
if LANGUAGE_SCORES and not Path(LANGUAGE_SCORES).is_file():
    stop(
        f"config key 'languages.scores': {LANGUAGE_SCORES} does not exist; give a CSV with "
        "columns language,score or remove the key"
    )
if LANGUAGE_SCORES and not LANGUAGE_GROUPS:
    stop(
        "config key 'languages.scores': scores are correlated with the languages of "
        "languages.groups, which is empty"
    )
LANGUAGE_SCORES_INPUT = LANGUAGE_SCORES or []
LANGUAGE_GRAMMATICALITY_OUTPUT = (
    [f"{RESULTS}/metrics/grammaticality/{{model}}/{{step}}.nc"]
    if LANGUAGE_PAIRS
    else []
)
_language_figures = languages_plan.figure_names(LANGUAGE_GROUPS, LANGUAGE_PAIRS)
LANGUAGE_FIGURE_FILES = {
    kind: [
        f"{RESULTS}/figures/languages/{{model}}/{{step}}/{stem}.png" for stem in stems
    ]
    for kind, stems in _language_figures.items()
}
LANGUAGE_FIGURE_FILES["pdf"] = [
    f"{RESULTS}/figures/languages/{{model}}/{{step}}/{stem}.pdf"
    for stems in _language_figures.values()
    for stem in stems
]


def languages_stores(wildcards):
    """Activation stores of every corpus of the languages study, for one checkpoint."""
    return [activations(wildcards.model, wildcards.step, c) for c in LANGUAGE_CORPORA]


def _languages_targets():
    """Every output of the languages study (nothing when the config defines no study)."""
    each = [
        f"{RESULTS}/metrics/languages/{{model}}/{{step}}.nc",
        *LANGUAGE_GRAMMATICALITY_OUTPUT,
        *(f for files in LANGUAGE_FIGURE_FILES.values() for f in files),
    ]
    targets = [p.format(model=m, step=s) for m, s in LANGUAGE_CHECKPOINTS for p in each]
    if LANGUAGE_SCORES and LANGUAGE_CHECKPOINTS:
        targets += [
            f"{RESULTS}/tables/languages/score_correlation.csv",
            f"{RESULTS}/tables/languages/score_correlation.tex",
        ]
    return targets


LANGUAGE_TARGETS = _languages_targets()


# softmax-bottleneck study

from repgeom.bottleneck import plan as bottleneck_plan

try:
    BOTTLENECK = bottleneck_plan.study_plan(config, STEPS, EXTRACT_CORPORA, RESULTS)
except ConfigError as err:
    stop(str(err))
for _name, _why in BOTTLENECK["skipped"].items():
    sys.stderr.write(
        f"repgeom: the softmax-bottleneck study skips model {_name!r}: {_why}\n"
    )
BN = config["bottleneck"]
BN_MODELS = BOTTLENECK["models"]
BN_MODEL_PATTERN = "|".join(re.escape(m) for m in BN_MODELS) or "(?!)"
BN_CORPORA = BOTTLENECK["eval_corpora"]
BN_HEADS = BOTTLENECK["heads"]
BN_HEADS_CORPUS = BOTTLENECK["heads_corpus"]
BN_NGRAM = BOTTLENECK["ngram"]
# options that shape the results (selection, threads and budgets do not rerun jobs)
BN_HEADS_OPTIONS = {
    k: v
    for k, v in BN["heads"].items()
    if k not in ("models", "steps", "threads", "memory_mb")
}
BN_NGRAM_OPTIONS = {
    k: v
    for k, v in BN["ngram"].items()
    if k not in ("corpora", "tokenizers", "thresholds", "memory_mb")
}
BN_FIG = f"{RESULTS}/figures/bottleneck"
BN_TAB = f"{RESULTS}/tables/bottleneck"
# figure stems of each part of the study (a part without data has none)
_bn_stems = {
    "eval_loss": ["eval_loss"] if BN_MODELS else [],
    "spectrum": [f"lm_head_spectrum_{m}" for m in BN_MODELS],
    "entropy": ["entropy_cosine_loss"] if BN_MODELS else [],
    "heads": ["heads_perplexity"] if BN_HEADS else [],
    "ngram": ["ngram_werror"] if BN_NGRAM else [],
}
BN_FIGURES = {k: [f"{BN_FIG}/{s}.png" for s in v] for k, v in _bn_stems.items()}
BN_FIGURES["pdf"] = [f"{BN_FIG}/{s}.pdf" for v in _bn_stems.values() for s in v]
BN_TABLES = {
    "best_vs_final": [f"{BN_TAB}/best_vs_final.csv"] if BN_MODELS else [],
    "ngram_thresholds": [f"{BN_TAB}/ngram_thresholds.csv"] if BN_NGRAM else [],
}
BN_TABLES["tex"] = [p.replace(".csv", ".tex") for v in BN_TABLES.values() for p in v]


def bottleneck_stores(wildcards):
    """Eval activation stores of one model: every checkpoint × eval corpus of the study."""
    return [
        activations(wildcards.model, s, c)
        for s in STEPS[wildcards.model]
        for c in BN_CORPORA
    ]


def bottleneck_heads_inputs(wildcards):
    """The checkpoint, its eval store (evaluation) and its tokens (train windows)."""
    return {
        "store": activations(wildcards.model, wildcards.step, BN_HEADS_CORPUS),
        "tokens": model_tokens(wildcards.model, BN_HEADS_CORPUS),
        "checkpoint": checkpoint_input(wildcards),
    }


def _bottleneck_targets():
    """Every output of the softmax-bottleneck study."""
    targets = []
    for m in BN_MODELS:
        targets += [
            f"{RESULTS}/metrics/eval_loss/{m}.nc",
            f"{RESULTS}/metrics/last_layer_cosine/{m}.nc",
            f"{RESULTS}/metrics/lm_head/{m}.nc",
        ]
    targets += [f"{RESULTS}/heads/{m}/{s}.nc" for m, s in BN_HEADS]
    targets += [f"{RESULTS}/ngram/{t}/{c}.nc" for t, c in BN_NGRAM]
    targets += [f for files in BN_FIGURES.values() for f in files]
    targets += [f for files in BN_TABLES.values() for f in files]
    return targets


BOTTLENECK_TARGETS = _bottleneck_targets()


# Final artifacts: the inputs of every study's target rule.
STUDIES = ["spine", "shape_of_learning", "languages", "softmax_bottleneck", "induction"]


def _studies():
    defined = {r.name for r in workflow.rules}
    return [name for name in STUDIES if name in defined]


def manifest_targets(wildcards=None):
    """Every final artifact of every study, sorted."""
    return sorted({str(f) for name in _studies() for f in getattr(rules, name).input})


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


# birth-of-a-transformer study: runs when its corpus exists; variants are checked here
BIRTH = config["birth"]
BIRTH_FIGURES = ["training_curves", "memory_probes", "attention_maps"]


def _birth_variants():
    from repgeom.birth.config import DEFAULT_VARIANTS, parse_config

    if BIRTH["corpus"] not in CORPORA:
        if "corpus" in RAW_CONFIG.get("birth", {}):
            stop(
                f"config key 'birth.corpus': {BIRTH['corpus']!r} is not a corpus of this config"
            )
        return {}
    variants = DEFAULT_VARIANTS if BIRTH["variants"] is None else BIRTH["variants"]
    out = {}
    for name, overrides in variants.items():
        merged = {**overrides, **BIRTH["common"], "name": name}
        try:
            out[name] = parse_config(merged).to_dict()
        except ValueError as err:
            stop(f"config key 'birth.variants.{name}': {err}")
    return out


BIRTH_VARIANTS = _birth_variants()


# disk: activation stores as temp(), hub revisions released after the last job loading them


def activation_output(path):
    """An activation store output, temp() when disk.temporary_activations is on."""
    return temp(directory(path)) if DISK["temporary_activations"] else directory(path)


def store_corpora(model, step):
    """Corpora whose activations one checkpoint gets: the extraction corpora, and the
    languages study's corpora at the checkpoints it reads."""
    study = LANGUAGE_CORPORA if (model, step) in LANGUAGE_CHECKPOINTS else []
    return list(dict.fromkeys([*EXTRACT_CORPORA, *study]))


def tokens_corpora(tokenizer):
    """Corpora tokenized with a tokenizer by some job of this run."""
    corpora = [c for t, c in BN_NGRAM if t == tokenizer]
    for name, model in MODELS.items():
        if model["tokenizer"] != tokenizer:
            continue
        if model["source"] == "train":
            corpora.append(model["corpus"])
        for step in STEPS[name]:
            corpora += store_corpora(name, step)
    return list(dict.fromkeys(corpora))


def checkpoint_consumers(model, step):
    """Outputs of every job that loads one hub checkpoint (its weights or its tokenizer)."""
    out = [activations(model, step, c) for c in store_corpora(model, step)]
    if model in BN_MODELS:
        out.append(f"{RESULTS}/metrics/lm_head/{model}/{step}.nc")
    if (model, step) in BN_HEADS:
        out.append(f"{RESULTS}/heads/{model}/{step}.nc")
    for name, tok in TOKENIZERS.items():
        if (
            tok["kind"] == "from_model"
            and tok["model"] == model
            and STEPS[model][-1] == step
        ):
            out += [tokens_path(name, c) for c in tokens_corpora(name)]
    return out


HUB_RELEASES = (
    {
        (m, s): checkpoint_consumers(m, s)
        for m, v in MODELS.items()
        if v["source"] == "hub"
        for s in STEPS[m]
        if checkpoint_consumers(m, s)
    }
    if DISK["release_hub_revisions"]
    else {}
)
