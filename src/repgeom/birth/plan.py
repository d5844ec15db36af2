"""Planning of the "Birth of a Transformer" study: every variant's settings, filled and checked
when the workflow is planned, so that a bad variant stops the run before any job."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from repgeom.birth.config import BirthConfig, SettingsError
from repgeom.workflow.config import ConfigError, options
from repgeom.workflow.paths import PATHS, Paths
from repgeom.workflow.studies import CorePlan, StudyPlan

#: The schema node a variant is filled from.
VARIANT = "birth.$defs.variant"


def study_variants(
    section: Mapping[str, Any], corpora: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """Resolved settings of every variant of the study (``section``: the filled ``birth``
    config, whose corpus must be a corpus of the config). ``common`` applies to every variant;
    a variant's own setting wins over it. A ConfigError names the wrong key."""
    if section["corpus"] not in corpora:
        raise ConfigError(
            f"config key 'birth.corpus': {section['corpus']!r} is not a corpus of this config "
            f"(corpora: {list(corpora)}); add it under corpora, or name one of them"
        )
    out = {}
    for name, overrides in section["variants"].items():
        try:
            cfg = options(BirthConfig, VARIANT, {**section["common"], **overrides})
            out[name] = dataclasses.replace(cfg, name=name).to_dict()
        except ConfigError as err:
            raise ConfigError(str(err).replace(VARIANT, f"birth.variants.{name}")) from None
        except SettingsError as err:  # settings that contradict each other
            where, note = f"birth.variants.{name}", ""
            if err.key in section["common"] and err.key not in overrides:
                where, note = "birth.common", f" (in variant {name!r})"
            raise ConfigError(f"config key '{where}.{err.key}': {err.message}{note}") from None
    return out


FIGURES = ("training_curves", "memory_probes", "attention_maps")


def plan(section: Mapping[str, Any] | None, run: CorePlan, paths: Paths = PATHS) -> StudyPlan:
    """The study's plan: every variant trained on the study's corpus, its probes and figures
    (nothing when the config does not name the study)."""
    variants = {} if section is None else study_variants(section, run.config["corpora"])
    targets = [paths.results(f"birth/{v}{end}.nc") for end in ("", "_attention") for v in variants]
    if variants:
        targets += [paths.figure("birth", f, ext) for f in FIGURES for ext in ("png", "pdf")]
    return StudyPlan(targets=tuple(targets), params={"variants": variants, "figures": FIGURES})
