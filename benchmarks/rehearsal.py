"""Rehearsal of a paper run: is `python -m repgeom.workflow.footprint` right about it?

Run by hand from the repository root: python benchmarks/rehearsal.py [--size 410m] [--cores 2]

One checkpoint of the largest model of config/paper/shape_of_learning.yaml at full size
(random weights of Pythia's published shape, saved in float16 as the hub holds it, in a local
directory) goes through the real rules with that config's extraction and geometry settings, on
a text corpus (the stdlib docstrings, enough for extraction.max_tokens) and its random-token
control. The projection is made first, on the same config and directory; then the run is
timed, and the measured wall time and job time per stage (Snakemake's benchmark files) are set
beside the projected ones. Writes benchmarks/runs/rehearsal/comparison.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
import transformers
import yaml

from repgeom.data.corpus import python_docs
from repgeom.data.tokenization import train_bpe
from repgeom.workflow.config import load_yaml
from repgeom.workflow.projection import hours
from repgeom.workflow.published import PUBLISHED

ROOT = Path(__file__).resolve().parents[1]
# the stage of a benchmark file from its first folder (metrics/ splits by its second)
BENCH_STAGES = {
    "corpus": "corpora",
    "download": "corpora",
    "tokenizers": "tokens",
    "tokens": "tokens",
    "models": "training",
    "extract": "extraction",
    "figures": "figures and tables",
    "tables": "figures and tables",
    "manifest": "other",
    "hub": "other",
}


def build(workdir: Path, size: str) -> Path:
    """The checkpoint, its tokenizer, the text file and the config of the rehearsal."""
    cfg_class, model_class, dims, _ = PUBLISHED[f"EleutherAI/pythia-{size}-deduped"]
    ckpt = workdir / f"pythia-{size}" / "step143000"
    docs = python_docs()
    (workdir / "docs.txt").write_text("\n\n".join(docs), encoding="utf-8")
    torch.manual_seed(0)
    model = getattr(transformers, model_class)(getattr(transformers, cfg_class)(**dims))
    model.half().save_pretrained(ckpt)
    train_bpe(docs, 8192).save_pretrained(ckpt)
    paper = load_yaml(ROOT / "config" / "paper" / "shape_of_learning.yaml")
    name = f"pythia-{size}-deduped"
    cfg = {
        "seed": paper["seed"],
        "corpora": {
            "text": {"kind": "text", "path": str(workdir / "docs.txt"), "eval_fraction": 0.5},
            "random": paper["corpora"]["random"],
        },
        "tokenizers": {"pythia": {**paper["tokenizers"]["pythia"], "model": name}},
        "models": {name: {"source": "local", "path": str(ckpt.parent), "tokenizer": "pythia"}},
        "extraction": {**paper["extraction"], "corpora": ["text", "random"], "device": "cpu"},
        "metrics": paper["metrics"],
        "bottleneck": paper["bottleneck"],
        "logit_lens": paper["logit_lens"],
    }
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def measured_stages(workdir: Path) -> dict[str, dict[str, float]]:
    """Job seconds and longest job per stage, from the run's benchmark files."""
    out: dict[str, dict[str, float]] = defaultdict(lambda: {"jobs": 0, "job_seconds": 0.0})
    runs = workdir / "benchmarks" / "runs"
    for tsv in runs.rglob("*.tsv"):
        parts = tsv.relative_to(runs).parts
        first = parts[0].removesuffix(".tsv")  # manifest.tsv sits at the top
        name = BENCH_STAGES.get(first, first)
        if parts[0] == "metrics":
            name = {"geometry": "geometry", "languages": "languages"}.get(parts[1], "gathering")
        seconds = float(tsv.read_text().splitlines()[1].split("\t")[0])
        stage = out[name]
        stage["jobs"] += 1
        stage["job_seconds"] += seconds
        stage["longest"] = max(stage.get("longest", 0.0), seconds)
    return dict(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="410m", choices=["70m", "160m", "410m"])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--workdir", default=str(ROOT / "benchmarks" / "runs" / "rehearsal"))
    args = parser.parse_args()
    workdir = Path(args.workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    config = build(workdir, args.size)
    projection = workdir / "projection.json"
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "repgeom.workflow.footprint", str(config), "--directory",
         str(workdir), "--cores", str(args.cores), "--json", str(projection)],
        check=True, cwd=ROOT,
    )  # fmt: skip
    projection_s = time.perf_counter() - t
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory",
         str(workdir), "--configfile", str(config), "--cores", str(args.cores)],
        check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wall_s = time.perf_counter() - t
    projected = json.loads(projection.read_text())
    measured = measured_stages(workdir)
    print(f"\nprojection took {hours(projection_s)} (calibration included)")
    print("\n| stage | jobs | projected job time | measured job time | ratio |")
    print("|---|---|---|---|---|")
    for name, p in projected["stages"].items():
        m = measured.get(name, {"job_seconds": float("nan"), "jobs": 0})
        ratio = p["job_seconds"] / m["job_seconds"] if m["job_seconds"] else float("nan")
        print(
            f"| {name} | {p['jobs']} ({m['jobs']} measured) | {hours(p['job_seconds'])} | "
            f"{hours(m['job_seconds'])} | {ratio:.2f} |"
        )
    ratio = projected["wall_s"] / wall_s
    print(
        f"\nwall time, --cores {args.cores}: projected {hours(projected['wall_s'])}, "
        f"measured {hours(wall_s)}: projected / measured = {ratio:.2f}"
    )
    (workdir / "comparison.json").write_text(
        json.dumps(
            {"projected": projected, "measured": measured, "wall_s": wall_s, "ratio": ratio},
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
