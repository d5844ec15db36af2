"""Checkpoint integrity cost against the extraction job of the same checkpoint.

Run by hand: python benchmarks/bench_fingerprint.py [WORKDIR] [--tokens N] [--threads T]
GPT-NeoX at Pythia-410m's dims (hidden 1024, 24 layers, 16 heads, intermediate 4096,
vocabulary 50 304, random weights) saved as float16 safetensors like Pythia's (~0.8 GB), and
three references (the same tensors plus noise, float16). Side by side in one process:

- fingerprint: every tensor's sha256 and the checkpoint's (``fingerprint_checkpoint``);
- distances: one pass over the checkpoint against the three references (``compare``: float64
  sums per tensor group, as ``weights_dataset`` runs them for first, previous and last);
- extraction: loading the checkpoint (float32, CPU) and ``extract`` on N tokens of windows of
  512 random ids, batch 8 (the shape-of-learning paper config: window 512, batch 8,
  ``max_tokens`` 32 768, float32), scaled linearly to 32 768 tokens when N is smaller.

Target: fingerprint + distances ≤ 0.1 × the extraction job of 32 768 tokens. Fingerprint and
distances are the best of 2 rounds, with the files in the page cache (they were just written;
in a run the extraction job reads the same files from disk anyway); extraction one round.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_real_vocab import SHAPES, config  # noqa: E402

PAPER_TOKENS = 32768  # config/paper/shape_of_learning.yaml extraction.max_tokens
WINDOW, BATCH = 512, 8


def build(work: Path) -> tuple[Path, list[Path]]:
    """The 410m-shaped float16 checkpoint and three float16 references beside it."""
    import torch
    from safetensors.numpy import load_file, save_file
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    target = work / "target"
    refs = [work / f"ref{i}" for i in range(3)]
    if not (target / "model.safetensors").exists():
        torch.manual_seed(0)
        hidden, layers, heads, inter, _ = SHAPES["410m"]
        model = GPTNeoXForCausalLM(GPTNeoXConfig(**config(hidden, layers, heads, inter)))
        model.half().save_pretrained(target)
        del model
    tensors = None
    for i, ref in enumerate(refs):
        if (ref / "model.safetensors").exists():
            continue
        tensors = tensors or load_file(target / "model.safetensors")
        rng = np.random.default_rng(i + 1)
        ref.mkdir(parents=True, exist_ok=True)
        noisy = {
            k: (v.astype(np.float32) + 0.01 * rng.standard_normal(v.shape, np.float32)).astype(
                v.dtype
            )
            for k, v in tensors.items()
        }
        save_file(noisy, ref / "model.safetensors", metadata={"format": "pt"})
    return target, refs


def best(fn, rounds: int = 2) -> float:
    """Best wall time of ``rounds`` calls."""
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("work", nargs="?", default="/tmp/repgeom-bench-fingerprint")
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    target, refs = build(work)
    print(f"files ready in {time.perf_counter() - t:.0f} s: {target}, {len(refs)} references")

    from repgeom.activations.weights import compare, fingerprint_checkpoint

    size = sum(p.stat().st_size for p in target.glob("*.safetensors")) / 2**30
    fp, dist = {}, {}
    for threads in sorted({1, args.threads}):
        fp[threads] = best(lambda n=threads: fingerprint_checkpoint(target, n))
        dist[threads] = best(lambda n=threads: compare(target, refs, n))
        print(
            f"threads {threads}: fingerprint {fp[threads]:.2f} s ({size / fp[threads]:.2f} GiB/s); "
            f"distances to 3 references {dist[threads]:.2f} s"
        )

    import torch

    from repgeom.activations.extraction import extract
    from repgeom.activations.models import Checkpoint
    from repgeom.data.tokens import Windows

    torch.set_num_threads(args.threads)
    t = time.perf_counter()
    model = Checkpoint(str(target)).load("float32", "cpu")
    load = time.perf_counter() - t
    n_windows = args.tokens // WINDOW
    rng = np.random.default_rng(0)
    ids = rng.integers(0, model.config.vocab_size, size=(n_windows, WINDOW)).astype(np.int32)
    windows = Windows(ids, np.full(n_windows, WINDOW, dtype=np.int32))
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        extract(model, windows, f"{tmp}/a.zarr", BATCH, {}, eval_loss=False)
        run = time.perf_counter() - t
    scaled = run * PAPER_TOKENS / windows.n_tokens
    job = load + scaled
    ours = fp[args.threads] + dist[args.threads]
    print(
        f"extraction ({args.threads} threads): load {load:.1f} s, {windows.n_tokens} tokens in "
        f"{run:.1f} s ({windows.n_tokens / run:.0f} tokens/s) -> {scaled:.0f} s for "
        f"{PAPER_TOKENS} tokens (linear), job {job:.0f} s"
    )
    print(
        f"fingerprint + distances {ours:.2f} s = {ours / job:.3f} x the extraction job "
        f"(target <= 0.1); {ours / scaled:.3f} x its forward passes alone"
    )


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"({time.perf_counter() - t0:.0f} s in all)")
