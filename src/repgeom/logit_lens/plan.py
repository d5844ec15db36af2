"""What the logit-lens study builds, from the config alone (no torch import)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from repgeom.workflow.config import ConfigError
from repgeom.workflow.paths import PATHS, Paths
from repgeom.workflow.plan import causal_models, extraction_corpora
from repgeom.workflow.studies import CorePlan, StudyPlan

STUDY = "logit_lens"


def lens_models(
    config: dict[str, Any], errors: list[str], skipped: dict[str, str] | None = None
) -> list[str]:
    """Models whose extractions compute the logit lens: those of the logit-lens study
    (``logit_lens.models``, :func:`causal_models`), on the extraction corpora; none when no
    corpus is extracted (an error when models are listed)."""
    listed = config["logit_lens"]["models"]
    needs = "the logit lens decodes every layer with the model's causal LM head"
    models = causal_models(listed, config["models"], "logit_lens.models", needs, errors, skipped)
    if models and not extraction_corpora(config):
        if listed is not None:
            errors.append(
                "config key 'logit_lens.models': no corpus is extracted (extraction.corpora); "
                "add one, or set logit_lens.models: []"
            )
        return []
    return models


def study_outputs(models: Sequence[str], paths: Paths = PATHS) -> dict[str, str]:
    """The study's figure and table files by name (none without a model)."""
    if not models:
        return {}
    out = {}
    for stem in ("loss_by_layer", "agreement_by_layer"):
        key = stem.split("_")[0]
        out[f"{key}_png"] = paths.figure(STUDY, stem)
        out[f"{key}_pdf"] = paths.figure(STUDY, stem, "pdf")
    out["csv"] = paths.table(STUDY, STUDY)
    out["tex"] = paths.table(STUDY, STUDY, "tex")
    return out


def plan(section: Mapping[str, Any] | None, run: CorePlan, paths: Paths = PATHS) -> StudyPlan:
    """The study's plan: the lens computed in the extraction of every store of its models (on
    the extraction corpora), gathered per model, the figures and the table."""
    errors: list[str] = []
    skipped: dict[str, str] = {}
    models = [] if section is None else lens_models(dict(run.config), errors, skipped)
    if errors:
        raise ConfigError("invalid config:\n  " + "\n  ".join(errors))
    lens = {k: v for k, v in (section or {}).items() if k != "models"}
    outputs = study_outputs(models, paths)
    return StudyPlan(
        targets=(*(paths.metric(STUDY, m) for m in models), *outputs.values()),
        passes={(m, c): {"logit_lens": lens} for m in models for c in run.extract_corpora},
        params={"models": models, "outputs": outputs or study_outputs(["any"], paths)},
        notes=tuple(
            f"the logit-lens study skips model {name!r}: {why}" for name, why in skipped.items()
        ),
    )
