"""Planning of the "Birth of a Transformer" study: every variant's settings, filled and checked
when the workflow is planned (rules/birth.smk), so that a bad variant stops the run before any
job."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from repgeom.birth.config import BirthConfig, SettingsError
from repgeom.workflow.config import ConfigError, options

#: The schema node a variant is filled from.
VARIANT = "birth.$defs.variant"


def study_variants(
    section: Mapping[str, Any], corpora: Mapping[str, Any], corpus_named: bool
) -> dict[str, dict[str, Any]]:
    """Resolved settings of every variant of the study (``section``: the filled ``birth``
    config), or {} when its corpus is not a corpus of the config (an error naming the key when
    the config named that corpus itself: ``corpus_named``). ``common`` applies to every
    variant; a variant's own setting wins over it. A ConfigError names the wrong key."""
    if section["corpus"] not in corpora:
        if corpus_named:
            raise ConfigError(
                f"config key 'birth.corpus': {section['corpus']!r} is not a corpus of this config"
            )
        return {}
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
