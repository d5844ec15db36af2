"""What the softmax-bottleneck study builds, from the config alone (no torch import).

:func:`study_plan` turns the ``bottleneck`` config section (defaults filled) into the lists the
workflow expands: studied models, eval corpora, the checkpoints whose heads are trained and the
(tokenizer, corpus) pairs of the 5-gram estimates. It raises ConfigError naming the config key
for an unknown or unsuitable name, and refuses (before any job) heads or n-gram configurations
whose memory estimate exceeds the budget when the sizes are known at parse time:

- heads: V and d of a trained model come from its config (the tokenizer's vocab_size is an upper
  bound of V); for hub and local models from a config.json found on disk (the HF cache);
- 5-gram counting: the number of n-grams is known once the token store exists (a rerun), or
  bounded by ``max_tokens``. The SVD stage depends on the number of distinct contexts and is
  checked by the job itself, after counting and before the SVD allocates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from repgeom.activations.checkpoint import checkpoint_config, planning_step
from repgeom.steps import last_label
from repgeom.workflow.config import ConfigError
from repgeom.workflow.paths import PATHS, Paths
from repgeom.workflow.plan import causal_models
from repgeom.workflow.studies import CorePlan, StudyPlan

STUDY = "bottleneck"
TEXT_KINDS = ("python_docs", "text")
MIB = 2**20


def model_dims(
    model: Mapping[str, Any], tokenizers: Mapping[str, Mapping[str, Any]]
) -> tuple[int, int] | None:
    """(V, d) of a model's LM head when known at parse time (V an upper bound for trained
    models: the trained tokenizer's vocab_size), else None."""
    if model["source"] == "train":
        cfg = model["config"]
        d = cfg.get("hidden_size") or cfg.get("n_embd")
        tok = tokenizers.get(model["tokenizer"], {})
        v = cfg.get("vocab_size") or tok.get("vocab_size")
        return (int(v), int(d)) if v and d else None
    step = planning_step(model)
    cfg = None if step is None else checkpoint_config(model, step)
    if cfg is None:
        return None
    d = cfg.get("hidden_size") or cfg.get("n_embd") or cfg.get("d_model")
    v = cfg.get("vocab_size")
    return (int(v), int(d)) if v and d else None


def _eval_corpora(
    section: Mapping[str, Any],
    corpora: Mapping[str, Mapping[str, Any]],
    extract_corpora: Sequence[str],
    errors: list[str],
) -> list[str]:
    """Corpora whose eval loss and mean cosine are reported (null: the text ones extracted)."""
    if section["eval_corpora"] is None:
        text = [
            c for c in extract_corpora if corpora[c]["kind"] not in ("random_tokens", "aligned")
        ]
        return text or list(extract_corpora)
    for i, name in enumerate(section["eval_corpora"]):
        if name not in extract_corpora:
            errors.append(
                f"config key 'bottleneck.eval_corpora[{i}]': {name!r} is not extracted "
                f"(extraction corpora: {list(extract_corpora)}); add it to extraction.corpora"
            )
    return [c for c in section["eval_corpora"] if c in extract_corpora]


def _heads(
    heads: Mapping[str, Any],
    models: Sequence[str],
    steps: Mapping[str, Sequence[str]],
    config: Mapping[str, Any],
    extract_corpora: Sequence[str],
    default_corpus: str | None,
    errors: list[str],
    last: Mapping[str, str] | None = None,
) -> tuple[list[tuple[str, str]], str | None, dict[str, int]]:
    """(model, step) checkpoints whose heads are trained, their corpus, and mem_mb per model
    (``last``: each model's last checkpoint as planning decided it)."""
    from repgeom.bottleneck.options import HeadTraining
    from repgeom.bottleneck.plan_checks import (
        heads_corpus_error,
        heads_mem_mb,
        heads_steps,
        known_names,
    )
    from repgeom.options import build

    corpus = heads["corpus"] or default_corpus
    study = f"a model of the study (bottleneck.models resolves to {list(models)})"
    names = known_names(heads["models"], models, "bottleneck.heads.models", study, errors)
    if not names:
        return [], corpus, {}
    why = heads_corpus_error(corpus, config["corpora"], extract_corpora)
    if why is not None:
        errors.append(why)
        return [], corpus, {}
    if not last and heads["steps"] == "last":
        last = {name: last_label(steps[name]) for name in names}
    chosen = [
        (name, s)
        for name in names
        for s in heads_steps(heads["steps"], name, steps[name], last or {}, errors)
    ]
    cfg = build(HeadTraining, heads, where="bottleneck.heads", extra=True)
    return (
        chosen,
        corpus,
        {
            name: heads_mem_mb(
                cfg,
                heads["memory_mb"],
                name,
                model_dims(config["models"][name], config["tokenizers"]),
                errors,
            )
            for name in dict.fromkeys(m for m, _ in chosen)
        },
    )


def _tokens_sizes(path: Path) -> tuple[int, int] | None:
    """(train windows, window length) of an existing token store, else None."""
    if not path.exists():
        return None
    try:
        import zarr

        root = zarr.open_group(str(path), mode="r")
        return int(root["train"].attrs["n_sequences"]), int(root["train"]["ids"].shape[1])
    except Exception:  # an unreadable or partial store: the job will rebuild or fail
        return None


def _ngram(
    ngram: Mapping[str, Any],
    models: Sequence[str],
    config: Mapping[str, Any],
    paths: Paths,
    errors: list[str],
) -> list[tuple[str, str]]:
    """(tokenizer, corpus) pairs of the 5-gram estimates; checks counting memory when known."""
    from repgeom.bottleneck.memory import check_ngram_memory
    from repgeom.bottleneck.options import NgramOptions
    from repgeom.bottleneck.plan_checks import counting_shape, known_names, ngram_tokenizers
    from repgeom.options import build

    corpora, tokenizers = config["corpora"], config["tokenizers"]
    names = ngram["corpora"]
    if names is None:
        names = [c for c, v in corpora.items() if v["kind"] in TEXT_KINDS]
    toks = ngram["tokenizers"]
    if toks is None:
        toks = list(dict.fromkeys(config["models"][m]["tokenizer"] for m in models))
    what = f"a corpus (corpora: {list(corpora)})"
    names = known_names(names, corpora, "bottleneck.ngram.corpora", what, errors)
    pairs = [(t, c) for t in ngram_tokenizers(toks, tokenizers, ngram["n"], errors) for c in names]
    options = build(NgramOptions, ngram, where="bottleneck.ngram", extra=True)
    budget = None if ngram["memory_mb"] is None else ngram["memory_mb"] * MIB
    for tok, corpus in pairs:
        sizes = _tokens_sizes(Path(paths.tokens(tok, corpus)))
        shape = counting_shape(options, sizes, tokenizers[tok]["window"])
        if shape is None:
            continue  # sizes unknown before the tokens exist: the job checks
        vocab = tokenizers[tok].get("vocab_size", 1)  # a hub tokenizer's is not known here
        try:
            check_ngram_memory(options.memory_estimate(*shape, vocab), budget, stage="counting")
        except MemoryError as err:
            errors.append(
                f"config key 'bottleneck.ngram' (tokenizer {tok!r}, corpus {corpus!r}): {err} "
                "(bottleneck.ngram.max_tokens; bottleneck.ngram.memory_mb sets the budget)"
            )
    return pairs


def study_plan(
    config: Mapping[str, Any],
    steps: Mapping[str, Sequence[str]],
    extract_corpora: Sequence[str],
    paths: Paths = PATHS,
    last: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Everything the study builds; ``config`` has the bottleneck defaults filled in; ``last``:
    each model's last checkpoint as planning decided it (default: from the labels).

    Keys: ``models``, ``skipped`` {model: why it has no place in the study},
    ``eval_corpora``, ``heads`` [(model, step)], ``heads_corpus``, ``heads_mem_mb``
    {model: MB}, ``ngram`` [(tokenizer, corpus)].
    """
    section = config["bottleneck"]
    errors: list[str] = []
    skipped: dict[str, str] = {}
    needs = (
        "the study needs a trained causal LM head (eval loss, LM-head spectrum, "
        "rank-restricted heads)"
    )
    models = causal_models(
        section["models"], config["models"], "bottleneck.models", needs, errors, skipped
    )
    eval_corpora = _eval_corpora(section, config["corpora"], extract_corpora, errors)
    if models and not eval_corpora:
        errors.append(
            "config key 'bottleneck.eval_corpora': no corpus is extracted; add one to "
            "extraction.corpora"
        )
    if models and config.get("extraction", {}).get("eval_loss") is False:
        errors.append(
            "config key 'extraction.eval_loss': the bottleneck study reads the eval loss stored "
            "with the activations; remove the key or set it to null (or bottleneck.models: [])"
        )
    first = eval_corpora[0] if eval_corpora else None
    heads, heads_corpus, heads_mem = _heads(
        section["heads"], models, steps, config, extract_corpora, first, errors, last
    )
    ngram = _ngram(section["ngram"], models, config, paths, errors)
    if errors:
        raise ConfigError("invalid config:\n  " + "\n  ".join(errors))
    return {
        "models": models,
        "skipped": skipped,
        "eval_corpora": eval_corpora,
        "heads": heads,
        "heads_corpus": heads_corpus,
        "heads_mem_mb": heads_mem,
        "ngram": ngram,
    }


# selection, threads and budgets choose what is built and how, not the numbers: editing them
# reruns nothing already made
HEADS_SELECTION = ("models", "steps", "threads", "memory_mb")
NGRAM_SELECTION = ("corpora", "tokenizers", "thresholds", "memory_mb")


def study_outputs(plan: Mapping[str, Any], paths: Paths = PATHS) -> dict[str, Any]:
    """Figure and table files of each part of the study (a part without data has none) and
    every target, from :func:`study_plan`'s result."""
    models, heads, ngram = plan["models"], plan["heads"], plan["ngram"]
    stems = {
        "eval_loss": ["eval_loss"] if models else [],
        "spectrum": [f"lm_head_spectrum_{m}" for m in models],
        "entropy": ["entropy_cosine_loss"] if models else [],
        "heads": ["heads_perplexity"] if heads else [],
        "ngram": ["ngram_werror"] if ngram else [],
    }
    figures = {k: [paths.figure(STUDY, s) for s in v] for k, v in stems.items()}
    figures["pdf"] = [paths.figure(STUDY, s, "pdf") for v in stems.values() for s in v]
    tables = {
        "best_vs_final": [paths.table(STUDY, "best_vs_final")] if models else [],
        "ngram_thresholds": [paths.table(STUDY, "ngram_thresholds")] if ngram else [],
    }
    tables["tex"] = [p.replace(".csv", ".tex") for v in tables.values() for p in v]
    targets = [
        paths.metric(name, m)
        for m in models
        for name in ("eval_loss", "last_layer_cosine", "lm_head")
    ]
    targets += [paths.heads(m, s) for m, s in heads]
    targets += [paths.ngram(t, c) for t, c in ngram]
    targets += [f for files in (*figures.values(), *tables.values()) for f in files]
    return {"figures": figures, "tables": tables, "targets": targets}


def plan(section: Mapping[str, Any] | None, run: CorePlan, paths: Paths = PATHS) -> StudyPlan:
    """The study's plan (:func:`study_plan` and :func:`study_outputs`): no model when the config
    does not name the study (``models: null`` would mean every causal model)."""
    config = dict(run.config)
    if section is None:
        config[STUDY] = {**config[STUDY], "models": []}
    found = study_plan(config, run.steps, run.extract_corpora, paths, run.last)
    outputs = study_outputs(found, paths)
    readers = {
        (m, s): [paths.metric("lm_head", m, s)] for m in found["models"] for s in run.steps[m]
    }
    for m, s in found["heads"]:
        readers.setdefault((m, s), []).append(paths.heads(m, s))
    tokenizes: dict[str, list[str]] = {}
    for tok, corpus in found["ngram"]:
        tokenizes.setdefault(tok, []).append(corpus)
    heads, ngram = config[STUDY]["heads"], config[STUDY]["ngram"]
    return StudyPlan(
        targets=tuple(outputs["targets"]),
        reads_checkpoints={k: tuple(v) for k, v in readers.items()},
        tokenizes={k: tuple(v) for k, v in tokenizes.items()},
        passes={
            (m, c): {"eval_loss": True} for m in found["models"] for c in found["eval_corpora"]
        },
        params={
            **found,
            **outputs,
            "heads_options": {k: v for k, v in heads.items() if k not in HEADS_SELECTION},
            "ngram_options": {k: v for k, v in ngram.items() if k not in NGRAM_SELECTION},
        },
        notes=tuple(
            f"the softmax-bottleneck study skips model {name!r}: {why}"
            for name, why in found["skipped"].items()
        ),
    )
