"""Run the workflow in a directory, as a user would (a subprocess), and read its dry-run plan."""

from __future__ import annotations

import csv
import hashlib
import json
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


def pdf_subject(pdf: bytes) -> str:
    """The Subject of a PDF's Info dictionary (an ASCII literal string)."""
    i = pdf.index(b"/Subject (") + len(b"/Subject (")
    out = bytearray()
    while pdf[i : i + 1] != b")":
        if pdf[i : i + 1] == b"\\":  # \\ \( \) and the letter escapes
            i += 1
            out += {b"n": b"\n", b"r": b"\r", b"t": b"\t"}.get(pdf[i : i + 1], pdf[i : i + 1])
        else:
            out += pdf[i : i + 1]
        i += 1
    return out.decode("ascii")


def check_figure(
    run_dir: Path, png: Path, rule: str, inputs: list[str], data_pixels: int | None = None
) -> None:
    """A figure as the workflow saves it: a PNG drawn on (not blank, with coloured data marks
    beside the black axes: ``data_pixels`` of them, default 0.2 % of the image) whose provenance
    names ``rule`` and exactly ``inputs`` (paths relative to ``run_dir``), each by the sha256 the
    file has now; its PDF sibling carries the same."""
    import numpy as np
    from PIL import Image

    from repgeom.plots.common import PROVENANCE_KEY, figure_provenance

    with Image.open(png) as im:
        assert im.format == "PNG" and min(im.size) >= 300, (png, im.size)
        rgb = np.asarray(im.convert("RGB"), dtype=np.float64)
    grey = rgb.mean(axis=2)
    assert grey.std() > 10 and (grey < 128).mean() > 0.005, png  # drawn on, not blank
    colour = rgb.max(axis=2) - rgb.min(axis=2)
    wanted = 0.002 * colour.size if data_pixels is None else data_pixels
    assert (colour > 80).sum() > wanted, png  # the data (the axes and labels are black)
    meta = figure_provenance(png)
    assert meta["rule"] == rule, (png, meta["rule"])
    recorded = json.loads(meta["inputs"])
    assert sorted(recorded) == sorted(inputs), (png, sorted(recorded))
    for path, digest in recorded.items():
        assert hashlib.sha256((run_dir / path).read_bytes()).hexdigest() == digest, (png, path)
    pdf = png.with_suffix(".pdf").read_bytes()
    assert pdf.startswith(b"%PDF-"), png
    key, _, text = pdf_subject(pdf).partition(" ")
    assert key == PROVENANCE_KEY and json.loads(text) == meta, png
