"""What the logit-lens study builds, from the config alone (no torch import)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from repgeom.workflow.paths import PATHS, Paths
from repgeom.workflow.plan import causal_models, extraction_corpora

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
