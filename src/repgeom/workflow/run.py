"""One plan of a run: :func:`plan_run` turns a config, as the user wrote it, into the frozen
:class:`RunPlan` that the rules, the footprint command and the tests all read. No other place
plans: what each activation store computes, which jobs load each checkpoint, what each
tokenizer tokenizes and every study's targets are decided here, from the config alone (the DAG
is static)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from repgeom.steps import Checkpoint, last_checkpoint, unnumbered_warning
from repgeom.workflow.config import SCHEMA_PATH, ConfigError, check_references, load_config
from repgeom.workflow.paths import PATHS, Paths
from repgeom.workflow.plan import (
    eval_loss_models,
    extraction_corpora,
    link_notes,
    model_checkpoints,
)
from repgeom.workflow.studies import CorePlan, Study, StudyPlan, registry, study_schemas

CORE_METRICS = "geometry, similarity, checkpoint integrity"


@dataclasses.dataclass(frozen=True)
class RunPlan(CorePlan):
    """Everything a run builds: the core's plan, every study's, and what they ask of each other.

    - ``named``: study -> why it runs or not;
    - ``studies``: study -> its :class:`StudyPlan` (an empty one for a study not named);
    - ``passes``: (model, corpus) -> {pass: settings} of the extraction of that store;
    - ``checkpoint_readers``: (model, step) -> outputs of every job that loads its weights;
    - ``tokenized``: tokenizer -> every corpus tokenized with it;
    - ``kept_stores``: (model, step, corpus) activation stores the run makes;
    - ``missing``: messages for data that is not here (a real run stops, a dry run warns);
    - ``notes``: warnings printed when the run is planned.
    """

    named: Mapping[str, str] = dataclasses.field(default_factory=dict)
    studies: Mapping[str, StudyPlan] = dataclasses.field(default_factory=dict)
    passes: Mapping[tuple[str, str], Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    checkpoint_readers: Mapping[tuple[str, str], tuple[str, ...]] = dataclasses.field(
        default_factory=dict
    )
    tokenized: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    kept_stores: tuple[tuple[str, str, str], ...] = ()
    missing: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def targets(self) -> list[str]:
        """Every study's targets, in registry order, once each."""
        return list(dict.fromkeys(t for s in self.studies.values() for t in s.targets))

    @property
    def checkpoint_params(self) -> dict[str, list[dict[str, Any]]]:
        """Model -> what gathering jobs record on their step dim (label, step, tokens seen)."""
        return {m: [dataclasses.asdict(c) for c in v] for m, v in self.checkpoints.items()}

    @property
    def pre_final_norm(self) -> bool:
        """Whether extraction stores the input of the final norm beside the layers: where the
        geometry job reads the last layer before it (metrics.geometry.conventions.final_norm:
        before)."""
        return self.config["metrics"]["geometry"]["conventions"]["final_norm"] == "before"

    def store_passes(self, model: str, corpus: str) -> Mapping[str, Any]:
        """The passes the extraction of one store computes besides the hidden states."""
        return self.passes.get((model, corpus), {})

    def summary(self) -> str:
        """The line printed when a run is planned: which studies run and why."""
        return (
            "; ".join(f"{k} {why}" for k, why in self.named.items())
            + f"; the core metrics ({CORE_METRICS}) run on every store"
        )


def named_studies(raw: Mapping[str, Any], studies: Iterable[Study]) -> dict[str, str]:
    """Study -> why it runs or not, from the config as the user wrote it (``raw``: before the
    schema's defaults): a study runs when the config names its section."""
    return {
        s.name: (
            f"runs: the config names its section '{s.name}'"
            if s.name in raw
            else f"not run: the config has no '{s.name}' section"
        )
        for s in studies
    }


def _checkpoints(
    config: Mapping[str, Any],
) -> tuple[dict[str, tuple[Checkpoint, ...]], list[str]]:
    """Every model's checkpoints in training order, and the warnings for labels without a step
    and for a local directory's links to its own checkpoints."""
    out, notes = {}, []
    for name, model in config["models"].items():
        try:
            ordered, unnumbered = model_checkpoints(model)
        except OSError as err:
            raise ConfigError(f"config key 'models.{name}.path': {err}") from None
        out[name] = tuple(ordered)
        if unnumbered:
            key = "revisions" if model["source"] == "hub" else "steps"
            notes.append(unnumbered_warning(name, unnumbered, f"models.{name}.{key}"))
        notes += link_notes(name, model)
    return out, notes


def _merge(into: dict[Any, list[Any]], items: Mapping[Any, Iterable[Any]]) -> None:
    """Append each key's items to ``into``, once each, in order."""
    for key, values in items.items():
        have = into.setdefault(key, [])
        have += [v for v in values if v not in have]


def _core_needs(
    core: CorePlan, paths: Paths
) -> tuple[dict[tuple[str, str], list[str]], dict[str, list[str]]]:
    """The core's own checkpoint readers (the fingerprint and the extraction of every store)
    and tokenized corpora (a trained model's training corpus, the extraction corpora)."""
    models = core.config["models"]
    readers: dict[tuple[str, str], list[str]] = {}
    tokenized: dict[str, list[str]] = {}
    _merge(
        tokenized,
        {m["tokenizer"]: [m["corpus"]] for m in models.values() if m["source"] == "train"},
    )
    for name, steps in core.steps.items():
        for step in steps:
            acts = [paths.activations(name, step, c) for c in core.extract_corpora]
            _merge(readers, {(name, step): [paths.fingerprint(name, step), *acts]})
    return readers, tokenized


def _passes(
    config: Mapping[str, Any], plans: Mapping[str, StudyPlan]
) -> dict[tuple[str, str], dict[str, Any]]:
    """(model, corpus) -> the passes its store computes: what the studies ask, with the eval
    loss as ``extraction.eval_loss`` sets it (null: where a study reads it; true: every store;
    false: none)."""
    asked: dict[tuple[str, str], dict[str, Any]] = {}
    for plan in plans.values():
        for key, passes in plan.passes.items():
            asked.setdefault(key, {}).update(passes)
    wanted: dict[str, list[str]] = {}
    for (model, corpus), passes in asked.items():
        if passes.get("eval_loss"):
            wanted.setdefault(model, []).append(corpus)
    loss, errors = eval_loss_models(dict(config), wanted)
    if errors:
        raise ConfigError("invalid config:\n  " + "\n  ".join(errors))
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for (model, corpus), passes in asked.items():
        rest = {k: v for k, v in passes.items() if k != "eval_loss"}
        if rest:
            out[(model, corpus)] = rest
    for model, corpora in loss.items():
        for corpus in corpora:
            out.setdefault((model, corpus), {})["eval_loss"] = True
    return out


def plan_run(
    raw: Mapping[str, Any],
    paths: Paths = PATHS,
    schema: str | Path = SCHEMA_PATH,
    studies: tuple[Study, ...] | None = None,
) -> RunPlan:
    """The plan of a run of the config ``raw`` (as the user wrote it, before the schema's
    defaults). Raises ConfigError naming every key that is wrong."""
    studies = registry() if studies is None else studies
    config = load_config(dict(raw), schema, study_schemas(studies))
    missing: list[str] = []
    # a study's own corpus kinds (the languages study's flores, minimal pairs, synthetic) expand
    # into aligned corpora, one per language or side; from here on they are ordinary corpora
    for study in studies:
        expand = getattr(study.plan_module, "expand_corpora", None)
        if expand is not None:
            config["corpora"] = expand(config["corpora"], missing)
    check_references(config)
    checkpoints, notes = _checkpoints(config)
    core = CorePlan(
        config=config,
        checkpoints=checkpoints,
        last={m: last_checkpoint(list(v)).label for m, v in checkpoints.items()},
        extract_corpora=tuple(extraction_corpora(config)),
    )
    plans, errors = {}, []
    for study in studies:
        section = config.get(study.name) if study.name in raw else None
        try:
            plans[study.name] = study.plan_module.plan(section, core, paths)
        except ConfigError as err:
            errors.append(str(err))
    if errors:
        raise ConfigError("\n".join(errors))
    readers, tokenized = _core_needs(core, paths)
    kept = [
        (m, s, c) for m in core.geometry_models for s in core.steps[m] for c in core.extract_corpora
    ]
    for plan in plans.values():
        _merge(readers, plan.reads_checkpoints)
        _merge(tokenized, plan.tokenizes)
        kept += [s for s in plan.stores if s not in kept]
        notes += plan.notes
    for name in config["models"]:  # the extraction corpora last, as the rules declared them
        _merge(tokenized, {config["models"][name]["tokenizer"]: core.extract_corpora})
    return RunPlan(
        **{f.name: getattr(core, f.name) for f in dataclasses.fields(CorePlan)},
        named=named_studies(raw, studies),
        studies=plans,
        passes=_passes(config, plans),
        checkpoint_readers={k: tuple(v) for k, v in readers.items()},
        tokenized={k: tuple(v) for k, v in tokenized.items()},
        kept_stores=tuple(kept),
        missing=tuple(missing),
        notes=tuple(notes),
    )
