"""The package's layers hold: no module imports against the data flow, and planning code never
reaches a metric job's code hash."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from repgeom.workflow.codehash import module_closure
from repgeom.workflow.studies import BUILTIN

SRC = Path(__file__).resolve().parents[1] / "src" / "repgeom"
SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"

# lower layers first; a module may import its own layer and the ones below
BASE = ("steps", "provenance", "runtime", "options", "sampling")
CORE = ("io", "data", "activations", "metrics", "plots")
STUDIES = BUILTIN  # the registry's


def layer(module: str) -> tuple[int, str]:
    """(rank, package) of a repgeom module name ('repgeom.metrics.geometry')."""
    top = module.split(".")[1] if module.count(".") else ""
    if top in BASE or top == "":
        return 0, top
    if top in CORE:
        return 1 + CORE.index(top), top
    if top in STUDIES:
        return 1 + len(CORE), top
    if top == "workflow":
        return 2 + len(CORE), top
    raise AssertionError(f"{module}: a package of no layer; add it to tests/test_layers.py")


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """repgeom modules a file imports anywhere in it (functions included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("repgeom"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("repgeom"):
                names.add(node.module)
    return names


def allowed(importer: str, imported: str) -> bool:
    """Whether ``importer`` may import ``imported``: same package, or a lower layer; a study
    imports no other study; only a study's ``plan`` module may import the workflow."""
    (r1, p1), (r2, p2) = layer(importer), layer(imported)
    if p1 == p2:
        return True
    if p2 == "workflow":
        return p1 == "workflow" or (p1 in STUDIES and importer.endswith(".plan"))
    if p1 in STUDIES and p2 in STUDIES:
        return False
    return r2 < r1 or p1 == "workflow"


def test_no_module_imports_upward():
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        name = module_name(path)
        wrong += [f"{name} imports {m}" for m in sorted(imports(path)) if not allowed(name, m)]
    assert not wrong, "imports against the layers:\n  " + "\n  ".join(wrong)


@pytest.mark.parametrize(
    ("importer", "imported", "ok"),
    [
        ("repgeom.metrics.geometry", "repgeom.activations.source", True),
        ("repgeom.metrics.gather", "repgeom.workflow.plan", False),
        ("repgeom.activations.lens", "repgeom.metrics.layerwise", False),
        ("repgeom.io", "repgeom.provenance", True),
        ("repgeom.languages.compute", "repgeom.bottleneck.heads", False),
        ("repgeom.bottleneck.plan", "repgeom.workflow.config", True),
        ("repgeom.bottleneck.heads", "repgeom.workflow.config", False),
        ("repgeom.workflow.plan", "repgeom.bottleneck.plan", True),
    ],
)
def test_the_rule_itself(importer, imported, ok):
    assert allowed(importer, imported) is ok


# scripts that plan or fetch (they may use the workflow); every other one computes
PLANNING_SCRIPTS = {"download.py", "manifest.py", "release_hub_revision.py"}


@pytest.mark.parametrize(
    "script", sorted(p.name for p in SCRIPTS.glob("*.py") if p.name not in PLANNING_SCRIPTS)
)
def test_planning_code_is_not_in_a_jobs_code_hash(script):
    """A rule's code hash covers the modules its script imports, so editing the planner (or the
    config checks, hub look-ups, footprints) must rerun no metric, gather or figure job."""
    closure = module_closure(SCRIPTS / script)
    planning = [m for m in closure if m.startswith("repgeom.workflow") or m.endswith(".plan")]
    assert not planning, f"{script} depends on planning code {planning}"


def test_no_core_rules_file_reads_a_study_rules_files_globals():
    """The core's rules read the run's plan (RUN), never a global a study's rules file defines
    (which would exist only because of include order)."""
    import re

    from repgeom.workflow.studies import registry

    root = SRC.parents[1]
    study_files = {s.rules.resolve() for s in registry()}
    defined = {
        name: path.name
        for path in study_files
        for name in re.findall(r"^([A-Za-z_]\w*)\s*=", path.read_text(), flags=re.M)
    }
    core = [
        root / "Snakefile",
        *(p for p in (root / "rules").glob("*.smk") if p.resolve() not in study_files),
    ]
    wrong = [
        f"{path.name} reads {name} (defined in {defined[name]})"
        for path in core
        for name in sorted(set(re.findall(r"\b[A-Za-z_]\w*\b", path.read_text())) & set(defined))
    ]
    assert not wrong, "\n".join(wrong)
