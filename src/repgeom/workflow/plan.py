"""What the workflow builds, derived from the config alone (the DAG is static)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from repgeom.activations.checkpoint import (
    checkpoint_config,
    checkpoint_labels,
    checkpoint_links,
    checkpoint_problem,
    checkpoint_tokenizer_size,
    local_checkpoints,
    model_context,
    model_objective,
    planning_step,
    trained_model_config,
)
from repgeom.steps import Checkpoint, checkpoint_steps, last_checkpoint, order_checkpoints
from repgeom.workflow.locate import check_hub_revision, hub_weights_cached
from repgeom.workflow.paths import PATHS, Paths


def model_checkpoints(model: dict[str, Any]) -> tuple[list[Checkpoint], list[str]]:
    """A model's checkpoints ordered by training step, and the labels without a step: step{N}
    (trained), revisions (hub), ``steps`` or subdirectories (local)."""
    if model["source"] == "train":
        return [Checkpoint(f"step{s}", s) for s in checkpoint_steps(model["training"])], []
    return order_checkpoints(checkpoint_labels(model))


def link_notes(name: str, model: Mapping[str, Any]) -> list[str]:
    """Warnings for the symlinks of a local model's directory to its own checkpoints
    (``checkpoint-best -> checkpoint-50``), which are that checkpoint and are skipped."""
    if model["source"] != "local":
        return []
    return [
        f"model {name!r}: {label} -> {target} is a link to checkpoint {target!r} of "
        f"{model['path']}, not a checkpoint of its own: skipped ({target!r} is planned at its "
        "own step)"
        for label, target in checkpoint_links(model["path"]).items()
    ]


def extraction_corpora(config: dict[str, Any]) -> list[str]:
    """Corpora whose activations every checkpoint gets (the spine and geometry).

    ``extraction.corpora: null`` means every corpus the config names itself (the aligned
    corpora expanded from the languages study's kinds are extracted only at the checkpoints
    that study reads); a list means exactly those, ``[]`` none.
    """
    listed = config["extraction"]["corpora"]
    if listed is None:
        return [c for c, v in config["corpora"].items() if v["kind"] != "aligned"]
    return list(listed)


def checkpoint_location(
    name: str, model: dict[str, Any], step: str, paths: Paths = PATHS
) -> tuple[str, str | None]:
    """(path or hub id, revision) of one checkpoint of a model."""
    if model["source"] == "train":
        return paths.checkpoint(name, step), None
    if model["source"] == "hub":
        return model["id"], step
    root = model["path"]
    return (str(local_checkpoints(root).get(step, f"{root}/{step}")), None)


NO_CAUSAL_HEAD = {
    "masked": "a masked LM: its head does not predict the next token",
    "none": "a bare model: its checkpoint has no LM head",
}


def causal_models(
    listed: Sequence[str] | None,
    models: Mapping[str, Mapping[str, Any]],
    key: str,
    needs: str,
    errors: list[str],
    skipped: dict[str, str] | None = None,
) -> list[str]:
    """The models a study of causal LMs covers: the ``listed`` ones (config key ``key``), which
    must have a causal LM head (``needs`` says what for), or (None) every model that has one or
    whose head is not known yet (a hub revision not cached, in a dry run: its job checks); the
    others go to ``skipped`` with the reason. An unsupported head is an error naming the model."""

    def kind_of(name: str) -> str | None:
        try:
            return model_objective(models[name])
        except ValueError as err:
            errors.append(f"config key 'models.{name}': {err}")
            return "none"

    if listed is None:
        out = []
        for name in models:
            kind = kind_of(name)
            if kind in ("causal", None):
                out.append(name)
            elif skipped is not None:
                skipped[name] = NO_CAUSAL_HEAD[kind]
        return out
    out = []
    for i, name in enumerate(listed):
        if name not in models:
            errors.append(
                f"config key '{key}[{i}]': {name!r} is not a model (models: {list(models)})"
            )
            continue
        kind = kind_of(name)
        if kind in NO_CAUSAL_HEAD:
            errors.append(
                f"config key '{key}[{i}]': model {name!r} is {NO_CAUSAL_HEAD[kind]}; {needs}: "
                "remove it"
            )
        else:
            out.append(name)
    return out


def eval_loss_models(
    config: dict[str, Any], study: Mapping[str, Sequence[str]]
) -> tuple[dict[str, list[str]], list[str]]:
    """Per model, the corpora whose activation stores get the next-token eval loss, and config
    errors (a checkpoint with a head repgeom does not read, whatever is asked of it).

    ``extraction.eval_loss``: null = where a study reads it (``study``: model -> corpora, the
    softmax-bottleneck study's models on its eval corpora); true = every store of every model,
    so a model without a causal LM head is an error naming it (one whose head is not known yet,
    a hub revision not in the cache in a dry run, gets it: its job checks); false = none.
    """
    asked = config["extraction"]["eval_loss"]
    out: dict[str, list[str]] = {}
    errors: list[str] = []
    for name, model in config["models"].items():
        try:
            kind = model_objective(model)
        except ValueError as err:
            errors.append(f"config key 'models.{name}': {err}")
            continue
        if asked is True and kind not in ("causal", None):
            errors.append(
                f"config key 'extraction.eval_loss': model {name!r} has no causal LM head "
                f"(its checkpoint is {'a masked LM' if kind == 'masked' else 'a bare model'}), "
                "so it has no next-token loss; set eval_loss to null (where a study reads it)"
            )
        if asked is None:
            out[name] = list(study.get(name, []))
        else:
            out[name] = list(config["corpora"]) if asked else []
    return out, errors


def hub_release_inputs(
    config: Mapping[str, Any],
    steps: Mapping[str, Sequence[str]],
    readers: Mapping[tuple[str, str], Sequence[str]],
    tokenized: Mapping[str, Sequence[str]],
    paths: Paths = PATHS,
) -> dict[tuple[str, str], list[str]]:
    """(hub model, revision) -> the outputs of every job that loads it: what its release waits
    for. ``readers``: (model, step) -> the outputs of the jobs that load its weights;
    ``tokenized``: tokenizer -> the corpora tokenized with it (a tokenizer taken from a model
    loads that model's last revision: :func:`repgeom.steps.last_checkpoint`). Both are filled
    by the studies' rules."""
    out = {}
    for name, model in config["models"].items():
        if model["source"] != "hub":
            continue
        last = last_checkpoint(model_checkpoints(model)[0]).label
        for step in steps[name]:
            needs = list(readers.get((name, step), []))
            for tok, spec in config["tokenizers"].items():
                if spec["kind"] == "from_model" and spec["model"] == name and step == last:
                    needs += [paths.tokens(tok, c) for c in tokenized.get(tok, [])]
            if needs:
                out[(name, step)] = list(dict.fromkeys(needs))
    return out


def release_record(paths: Paths, model: str, step: str) -> dict | None:
    """What the release of a hub revision recorded, or None."""
    path = Path(paths.hub_release(model, step))
    return json.loads(path.read_text()) if path.is_file() else None


def unreadable(name: str, step: str, problem: str) -> str:
    """The message for a checkpoint whose files cannot be read."""
    return (
        f"model {name!r} checkpoint {step!r}: {problem}; save the checkpoint again (or remove "
        f"it from 'models.{name}')"
    )


def local_model_problems(name: str, model: Mapping[str, Any]) -> list[str]:
    """What is wrong with a local model's directory, read from its files' headers alone: an
    absent path, a listed step it does not hold, a checkpoint that cannot be read."""
    root = Path(model["path"])
    if not root.exists():
        return [f"config key 'models.{name}.path': {root} does not exist"]
    try:
        found = local_checkpoints(root)
    except FileNotFoundError as err:
        return [f"config key 'models.{name}.path': {err}"]
    listed = list(model.get("steps") or found)
    absent = [s for s in listed if s not in found]
    out = []
    links = checkpoint_links(root)
    if absent:
        linked = "".join(
            f"; {s} is a link to {links[s]} (the same checkpoint): list {links[s]!r}"
            for s in absent
            if s in links
        )
        out.append(
            f"config key 'models.{name}.steps': {absent} not found in {root} (its checkpoints: "
            f"{list(found)}; a checkpoint is a subdirectory with a config.json){linked}"
        )
    for step in listed:
        problem = None if step in absent else checkpoint_problem(model, step)
        if problem:
            out.append(unreadable(name, step, problem))
    return out


def check_inputs(
    config: dict, paths: Paths, online: bool
) -> tuple[dict[tuple[str, str], str], dict[tuple[str, str], bool], list[str]]:
    """What a run needs from outside, checked before any job: (the commit of every hub revision,
    whether this run downloads its weights, a message for everything missing).

    A text corpus with a ``url`` is fetched by its download rule, so only one without is
    missing; a local model's path must exist; a hub revision resolves from the HF cache or, when
    ``online``, the hub. With ``disk.release_hub_revisions``, a revision released after an
    earlier run resolves from its release record (it has left the cache on purpose).
    """
    from repgeom.workflow.config import text_corpus_missing

    messages = []
    for name, corpus in config["corpora"].items():
        missing = text_corpus_missing(name, corpus)
        if missing and not corpus.get("url"):
            messages.append(missing)
    commits: dict[tuple[str, str], str] = {}
    downloaded: dict[tuple[str, str], bool] = {}
    release = config["disk"]["release_hub_revisions"]
    for name, model in config["models"].items():
        if model["source"] == "local":
            messages += local_model_problems(name, model)
        if model["source"] != "hub":
            continue
        for rev in model["revisions"]:
            record = release_record(paths, name, rev) if release else None
            if record is not None:
                commits[(name, rev)], downloaded[(name, rev)] = (
                    record["commit"],
                    record["downloaded"],
                )
                continue
            downloaded[(name, rev)] = not hub_weights_cached(model["id"], rev)
            problem = None if downloaded[(name, rev)] else checkpoint_problem(model, rev)
            if problem:
                messages.append(unreadable(name, rev, problem))
            try:
                commits[(name, rev)] = check_hub_revision(model["id"], rev, online=online)
            except LookupError as err:
                messages.append(f"config key 'models.{name}.revisions': {err}")
    return commits, downloaded, messages


def model_tokenizer_problems(config: Mapping[str, Any]) -> list[str]:
    """Every model against its tokenizer, from config.json alone, before any job: the
    tokenizer's window must fit the model's context (positions past it raise IndexError or
    are read untrained), and every token id it emits must have a row in the model's
    embedding. A model the workflow trains is sized to its tokenizer unless its ``config``
    says otherwise; a hub revision not in the cache (a dry run) is skipped: its job checks."""
    models, tokenizers = config["models"], config["tokenizers"]
    out = []
    for name, model in models.items():
        tok_name = model["tokenizer"]
        tok = tokenizers.get(tok_name)
        if tok is None:
            continue
        if model["source"] == "train":
            cfg: Mapping[str, Any] | None = trained_model_config(model)
            where = f"models.{name}.config"
        else:
            step = planning_step(model)
            cfg = None if step is None else checkpoint_config(model, step)
            where = f"config.json of its checkpoint {step!r}"
        if not isinstance(cfg, Mapping):
            continue
        context = model_context(cfg)
        if context is not None and tok["window"] > context[0]:
            out.append(
                f"config key 'tokenizers.{tok_name}.window': {tok['window']} tokens, but model "
                f"{name!r} reads at most {context[0]} positions ({where}: {context[1]}): "
                "it was never trained on positions past its context (an absolute position "
                "embedding has no row for them). Set "
                f"tokenizers.{tok_name}.window ≤ {context[0]}"
            )
        rows = cfg.get("vocab_size")
        size = tokenizer_rows(tok, models)
        if isinstance(rows, int) and size is not None and size > rows:
            own = (
                tok["kind"] == "from_model" and tok["model"] == name and model["source"] != "train"
            )
            fix = (
                "resize the model's embedding to its tokenizer "
                "(model.resize_token_embeddings(len(tokenizer)); save_pretrained) or save the "
                "tokenizer it was trained with"
                if own
                else f"use the model's own tokenizer (a tokenizer with kind: from_model, "
                f"model: {name})"
                + (
                    f", or remove vocab_size from models.{name}.config (the model is then sized "
                    "to its tokenizer)"
                    if model["source"] == "train"
                    else ""
                )
            )
            out.append(
                f"config key 'models.{name}.tokenizer': tokenizer {tok_name!r} has {size} "
                f"tokens but model {name!r} has {rows} embedding rows (vocab_size in {where}): "
                f"token ids ≥ {rows} have no embedding; {fix}"
            )
    return out


def tokenizer_rows(tok: Mapping[str, Any], models: Mapping[str, Any]) -> int | None:
    """Embedding rows a tokenizer needs: a trained tokenizer's configured vocab_size, or the
    size of a hub or local model's saved tokenizer (None when it is not on disk)."""
    if tok["kind"] == "train":
        return int(tok["vocab_size"])
    source = models.get(tok["model"])
    if source is None or source["source"] == "train":
        return None
    step = planning_step(source)
    return None if step is None else checkpoint_tokenizer_size(source, step)
