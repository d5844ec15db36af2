"""The study protocol and the registry of studies.

A study is a package whose ``plan`` module has ``plan(section, run, paths) -> StudyPlan``:
``section`` is its config section with the schema's defaults filled, or None when the config
does not name it (it then plans nothing, but its rules file still reads its plan); ``run`` is
the :class:`CorePlan` of the run (models, checkpoints, extraction corpora). It raises
``ConfigError`` naming the key that is wrong. Its rules file reads the plan from
``RUN.studies[name]``.

The registry is :data:`BUILTIN` plus the packages registered under the ``repgeom.studies``
entry-point group (``name = package``), each with a ``RULES`` path (its rules file) and a
``SCHEMA`` (the JSON schema of its config section) in its ``plan`` module. Adding a study is a
package of that shape, one registry line and its rules file.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

from repgeom.steps import Checkpoint

ROOT = Path(__file__).resolve().parents[3]  # the checkout: Snakefile, rules/, config/
ENTRY_POINTS = "repgeom.studies"

# the built-in studies, in the order their targets are listed (the spine is the core's own)
BUILTIN = ("shape_of_learning", "languages", "bottleneck", "birth", "logit_lens")


@dataclasses.dataclass(frozen=True)
class Study:
    """One registered study: its config section's name, its package and its rules file."""

    name: str
    package: str
    rules: Path

    @property
    def plan_module(self) -> ModuleType:
        return importlib.import_module(f"{self.package}.plan")


def registry() -> tuple[Study, ...]:
    """Every study: the built-in ones, then those registered as entry points (by name)."""
    out = [Study(n, f"repgeom.{n}", ROOT / "rules" / f"{n}.smk") for n in BUILTIN]
    for ep in sorted(entry_points(group=ENTRY_POINTS), key=lambda e: e.name):
        if ep.name in BUILTIN:
            raise ValueError(f"entry point {ep.value!r} registers the built-in study {ep.name!r}")
        module = importlib.import_module(f"{ep.value}.plan")
        out.append(Study(ep.name, ep.value, Path(module.RULES)))
    return tuple(out)


def study_schemas(studies: tuple[Study, ...]) -> dict[str, dict[str, Any]]:
    """The config section schema of every registered study that brings its own (a plug-in: the
    built-in studies' sections are in config/schema.yaml)."""
    return {s.name: s.plan_module.SCHEMA for s in studies if s.name not in BUILTIN}


@dataclasses.dataclass(frozen=True)
class CorePlan:
    """What the core plans before the studies, and what a study plans from."""

    config: Mapping[str, Any]
    checkpoints: Mapping[str, tuple[Checkpoint, ...]]
    last: Mapping[str, str]
    extract_corpora: tuple[str, ...]

    @property
    def steps(self) -> dict[str, list[str]]:
        """Model -> its checkpoint labels in training order."""
        return {m: [c.label for c in v] for m, v in self.checkpoints.items()}

    @property
    def geometry_models(self) -> list[str]:
        """Models whose checkpoints get the spine and geometry (none when no corpus is
        extracted)."""
        return list(self.config["models"]) if self.extract_corpora else []


@dataclasses.dataclass(frozen=True)
class StudyPlan:
    """What one study builds and what it asks of the core.

    - ``targets``: every final output (its target rule's inputs);
    - ``reads_checkpoints``: (model, step) -> outputs of its jobs that load those weights;
    - ``tokenizes``: tokenizer -> corpora it tokenizes with it;
    - ``passes``: (model, corpus) -> {pass: settings} it asks of extraction (``eval_loss``:
      True; ``logit_lens``: the lens's token budget and seed);
    - ``stores``: (model, step, corpus) activation stores it reads besides the core's;
    - ``params``: what its rules read; ``notes``: lines printed when the run is planned.
    """

    targets: tuple[str, ...] = ()
    reads_checkpoints: Mapping[tuple[str, str], tuple[str, ...]] = dataclasses.field(
        default_factory=dict
    )
    tokenizes: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    passes: Mapping[tuple[str, str], Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    stores: tuple[tuple[str, str, str], ...] = ()
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def __getitem__(self, key: str) -> Any:
        """A param of the study's rules: ``plan["models"]``."""
        return self.params[key]
