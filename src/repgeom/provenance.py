"""Provenance attributes: package versions, code version, config hash, device."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("repgeom", "torch", "transformers", "tokenizers", "numpy", "xarray", "zarr", "scipy")


def config_hash(params: Any) -> str:
    """Short sha256 of a JSON-serialisable config fragment (key order does not matter)."""
    text = json.dumps(params, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@cache
def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape the results."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


@cache
def git_commit() -> str:
    """The commit of the working tree this code runs from, or 'unknown'."""
    try:
        res = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return res.stdout.strip() if res.returncode == 0 else "unknown"


def provenance(params: Any = None, **extra: Any) -> dict[str, Any]:
    """Attributes recording how a result was made."""
    attrs: dict[str, Any] = {
        "repgeom_git_commit": git_commit(),
        "python_version": platform.python_version(),
        "package_versions": json.dumps(package_versions(), sort_keys=True),
    }
    if params is not None:
        attrs["config"] = json.dumps(params, sort_keys=True, default=str)
        attrs["config_hash"] = config_hash(params)
    attrs.update(extra)
    return attrs
