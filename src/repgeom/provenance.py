"""Provenance attributes: package versions, code version, config hash, device.

Datasets carry them as attributes; figures and tables (:func:`artifact_provenance`) carry the
same record plus the sha256 of every input, as PNG text chunks, PDF metadata and comment lines
at the top of CSV (``#``) and LaTeX (``%``) files.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from collections.abc import Iterable, Mapping
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


def artifact_provenance(
    params: Mapping[str, Any], inputs: Iterable[str | Path], rule: str
) -> dict[str, str]:
    """Provenance of a figure or table: its rule, config values, code and inputs' sha256.

    ``params`` are the rule's named params (config values and the code hash); each input file
    is recorded by sha256 (a directory by its name only).
    """
    digests = {str(p): file_sha256(p) if Path(p).is_file() else "directory" for p in inputs}
    attrs = provenance(dict(params), rule=rule, device="cpu", inputs=json.dumps(digests))
    return {k: str(v) for k, v in attrs.items()}


def job_provenance(job: Any) -> dict[str, str]:
    """:func:`artifact_provenance` of a running Snakemake script job (its ``snakemake`` object)."""
    return artifact_provenance(dict(job.params.items()), list(job.input), job.rule)


def comment_header(meta: Mapping[str, str], marker: str) -> str:
    """Provenance as comment lines (``marker key: value``) to put above a text table."""
    lines = [f"{marker} repgeom provenance"]
    lines += [f"{marker} {key}: {value}" for key, value in sorted(meta.items())]
    return "\n".join(lines) + "\n"


def read_comment_header(path: str | Path, marker: str = "#") -> dict[str, str]:
    """The provenance lines written by :func:`comment_header` at the top of a file."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.startswith(marker):
                break
            key, sep, value = line[len(marker) :].strip().partition(": ")
            if sep:
                out[key] = value
    return out
