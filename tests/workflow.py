"""Run the workflow in a directory, as a user would (a subprocess), and read its dry-run plan."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def command(
    workdir: Path, configfile: Path, *args: str, snakefile: Path | None = None
) -> list[str]:
    """snakemake -s SNAKEFILE --directory workdir --configfile configfile ARGS, as argv."""
    return [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(snakefile or ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(configfile),
        *args,
    ]


def snakemake(
    workdir: Path,
    configfile: Path,
    *args: str,
    env: dict | None = None,
    timeout: int = 900,
    snakefile: Path | None = None,
) -> subprocess.CompletedProcess:
    """Run :func:`command` to the end, capturing its output."""
    return subprocess.run(
        command(workdir, configfile, *args, snakefile=snakefile),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def snakemake_at_root(*args: str, env: dict | None = None, timeout: int = 900):
    """``snakemake ARGS`` run from the repository root, exactly as the README shows."""
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def planned_wildcards(res: subprocess.CompletedProcess) -> dict[str, set[str]]:
    """Wildcard name -> every value a dry run's jobs use (from their 'wildcards:' lines)."""
    found: dict[str, set[str]] = {}
    for line in (res.stdout + res.stderr).splitlines():
        line = line.strip()
        if line.startswith("wildcards:"):
            for item in line.removeprefix("wildcards:").split(","):
                name, _, value = item.strip().partition("=")
                found.setdefault(name, set()).add(value)
    return found


def planned_jobs(res: subprocess.CompletedProcess) -> dict[str, int]:
    """Rule -> job count from a dry run's 'Job stats' table ({} when nothing is to be done)."""
    out = res.stdout + res.stderr
    if "Nothing to be done" in out:
        return {}
    table = out.split("Job stats:", 1)[1]
    jobs = {}
    for line in table.splitlines()[3:]:
        m = re.match(r"^(\S+)\s+(\d+)$", line.strip())
        if not m:
            break
        if m.group(1) != "total":
            jobs[m.group(1)] = int(m.group(2))
    return jobs


def table_rows(path: Path) -> list[dict[str, str]]:
    """Rows of a results CSV table, below its provenance comment lines."""
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))
