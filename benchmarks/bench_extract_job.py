"""One extraction job through Snakemake, asked for neither the eval loss nor the lens, against a
bare forward of the same tokens plus the job's start-up.

Run by hand: python benchmarks/bench_extract_job.py [WORKDIR]
Saves GPT-NeoX at Pythia-70m's dims (vocabulary 50 304, random weights) with save_pretrained,
writes a config with that directory as a local model (``source: local``), a tokenizer trained on
python_docs with windows of 512, 16 384 eval tokens, batch 4, ``bottleneck.models: []`` and
``logit_lens.models: []``, and builds the token store. Then, side by side: the extract job
through ``snakemake`` (its time from the rule's ``benchmark:`` file), and in a fresh process the
start-up (imports and loading the checkpoint, as the job's script does) and a bare forward of the
base model over the same windows. Target: job ≤ 1.6 × bare forward + start-up.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from bench_real_vocab import SHAPES, WINDOW, config  # noqa: E402

TOKENS = 16384
STORE = "results/activations/pythia70m/final/docs.zarr"

# the bare forward, in a fresh process: start-up (imports + loading), then the forward
PROBE = """
import sys, time
t0 = time.perf_counter()
import torch
from repgeom.activations.extraction import batches_in_order, extract  # what the job imports
from repgeom.activations.models import Checkpoint
from repgeom.data.tokens import read_tokens
torch.set_num_threads(1)
model = Checkpoint(sys.argv[1]).load("float32", "cpu")
startup = time.perf_counter() - t0
w = read_tokens(sys.argv[2], "eval", int(sys.argv[3]))
sys.path.insert(0, sys.argv[4])
from bench_extraction import bare_forward
rows = batches_in_order(len(w.lengths), 4)
bare_forward(model.base_model, w, rows[:1])
t = time.perf_counter()
bare_forward(model.base_model, w, rows)
print(startup, time.perf_counter() - t, w.n_tokens)
"""


def snakemake(work: Path, *args: str) -> None:
    """Run the workflow in ``work`` on its config.yaml (raises when it fails)."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(work)]
    subprocess.run(
        [*cmd, "--configfile", str(work / "config.yaml"), "--cores", "1", *args], check=True
    )


def main() -> None:
    import torch
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    work = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/repgeom-extract-job").resolve()
    work.mkdir(parents=True, exist_ok=True)
    ckpt = work / "pythia70m"
    if not (ckpt / "config.json").exists():
        torch.manual_seed(0)
        hidden, layers, heads, inter, _ = SHAPES["70m"]
        model = GPTNeoXForCausalLM(GPTNeoXConfig(**config(hidden, layers, heads, inter)))
        model.save_pretrained(ckpt)
    cfg = {
        "corpora": {"docs": {"kind": "python_docs", "eval_fraction": 0.2}},
        "tokenizers": {"bpe": {"kind": "train", "corpus": "docs", "window": WINDOW}},
        "models": {"pythia70m": {"source": "local", "path": str(ckpt), "tokenizer": "bpe"}},
        "extraction": {"corpora": ["docs"], "max_tokens": TOKENS, "batch_size": 4, "device": "cpu"},
        "bottleneck": {"models": []},
        "logit_lens": {"models": []},
    }
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    tokens = work / "results/tokens/bpe/docs.zarr"
    snakemake(work, str(tokens.relative_to(work)))
    jobs = []
    for _ in range(2):  # job and probe alternate; best of each
        snakemake(work, STORE, "--forcerun", "extract")
        with open(work / "benchmarks/runs/extract/pythia70m/final/docs.tsv") as f:
            jobs.append(float(next(csv.DictReader(f, delimiter="\t"))["s"]))
        probe = [sys.executable, "-c", PROBE, str(ckpt), str(tokens), str(TOKENS)]
        out = subprocess.run(
            [*probe, str(Path(__file__).parent)], capture_output=True, text=True, check=True
        )
        jobs.append(tuple(float(v) for v in out.stdout.split()))
    job = min(j for j in jobs if isinstance(j, float))
    probes = [p for p in jobs if isinstance(p, tuple)]
    startup = min(p[0] for p in probes)
    bare = min(p[1] for p in probes)
    n = int(probes[0][2])
    print(f"extract job (snakemake benchmark file): {job:.1f} s for {n} tokens")
    print(f"start-up (imports + loading): {startup:.1f} s; bare forward: {bare:.1f} s")
    print(
        f"job / (bare + start-up) = {job / (bare + startup):.2f}; "
        f"(job − start-up) / bare = {(job - startup) / bare:.2f}  (target: job ≤ 1.6 × bare + "
        f"start-up, i.e. ≤ {1.6 * bare + startup:.1f} s)"
    )


if __name__ == "__main__":
    t = time.perf_counter()
    main()
    print(f"({time.perf_counter() - t:.0f} s in all)")
