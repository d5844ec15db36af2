"""The conda environments pin the same packages as pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def requirement_map(reqs: list[str]) -> dict[str, str]:
    """package name (lower case) -> version specifier text."""
    out = {}
    for r in reqs:
        m = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*(.*)$", r)
        if m and not r.startswith("-e"):
            out[m.group(1).lower()] = m.group(2).replace(" ", "")
    return out


def test_env_pins_agree_with_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = requirement_map(project["dependencies"])
    envs = sorted((ROOT / "envs").glob("*.yaml"))
    assert envs
    for env in envs:
        deps = yaml.safe_load(env.read_text())["dependencies"]
        pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
        listed = requirement_map(pip)
        assert listed, env
        for name, spec in listed.items():
            assert name in pinned, f"{env.name}: {name} is not a dependency in pyproject.toml"
            assert spec == pinned[name], (
                f"{env.name}: {name}{spec} != pyproject {name}{pinned[name]}"
            )
        assert "-e ../" in pip, f"{env.name} must install repgeom itself"


def test_every_rule_uses_an_existing_env():
    for smk in (ROOT / "rules").glob("*.smk"):
        for ref in re.findall(r'conda:\s*\n\s*"([^"]+)"', smk.read_text()):
            assert (smk.parent / ref).resolve().is_file(), f"{smk.name}: {ref}"
