"""Extraction throughput on one GPU at Pythia-410m's shape (random weights, vocabulary 50 304),
32 768 tokens, window 512, batch 8, bfloat16 and float32: against a bare forward with hidden
states, the device-to-host copy of every layer (one transfer per batch and one per layer), and
the disk-write floor (dd). Prints the forward's FLOP rate, which
`python -m repgeom.workflow.footprint CONFIG --gpu-flops F` takes. Then saves two random
Pythia-410m checkpoints (float16, as the hub holds them) for the paper-sized run.

SMALL=1 runs a tiny shape, to try it on a CPU. Run by benchmarks/gpu_check.sh."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

from repgeom.activations.extraction import extract
from repgeom.data.tokens import Windows
from repgeom.workflow.calibration import forward_flops, model_size
from repgeom.workflow.published import PUBLISHED

SMALL = os.environ.get("SMALL") == "1"
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
DIMS = PUBLISHED["EleutherAI/pythia-410m-deduped"][2]
if SMALL:
    DIMS = {**DIMS, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
            "intermediate_size": 256}  # fmt: skip
N_TOKENS, WINDOW, BATCH = (2048 if SMALL else 32768), 512, 8


def sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def best_of(f, reps: int = 2) -> float:
    """The shortest of ``reps`` timed calls of f."""
    best = float("inf")
    for _ in range(reps):
        sync()
        t = time.perf_counter()
        f()
        sync()
        best = min(best, time.perf_counter() - t)
    return best


def forward(base, ids: np.ndarray, copy: str) -> None:
    """A bare forward with hidden states; copy: '' none, 'layer' one host copy per layer,
    'stacked' one float16 host copy of every layer per batch."""
    with torch.inference_mode():
        for start in range(0, len(ids), BATCH):
            x = torch.as_tensor(ids[start : start + BATCH].astype(np.int64), device=DEVICE)
            out = base(input_ids=x, output_hidden_states=True, use_cache=False)
            if copy == "layer":
                for h in out.hidden_states:
                    h.half().cpu()
            elif copy == "stacked":
                torch.stack(out.hidden_states).half().cpu()


def measure(cfg, dtype, ids, windows, flops: float, shm: str, disk: str) -> str:
    """One table row: the bare forward, the copy floors and extraction, in one dtype."""
    torch.manual_seed(0)
    with torch.device(DEVICE):
        model = GPTNeoXForCausalLM(cfg).to(dtype).eval()
    base = model.base_model
    forward(base, ids[:BATCH], "")  # warm-up
    bare = best_of(lambda: forward(base, ids, ""))
    layer = best_of(lambda: forward(base, ids, "layer"))
    stacked = best_of(lambda: forward(base, ids, "stacked"))
    ram = best_of(
        lambda: (
            extract(model, windows, f"{shm}/s.zarr", BATCH, {}),
            shutil.rmtree(f"{shm}/s.zarr"),
        ),
        reps=1,
    )
    on_disk = best_of(lambda: extract(model, windows, f"{disk}/s.zarr", BATCH, {}), reps=1)
    size = sum(p.stat().st_size for p in Path(f"{disk}/s.zarr").rglob("*") if p.is_file())
    shutil.rmtree(f"{disk}/s.zarr")
    n = N_TOKENS
    return (
        f"| {str(dtype).removeprefix('torch.')} | {n / bare:.0f} tok/s | {flops / bare / 1e12:.2f} | "
        f"{n / layer:.0f} ({bare / layer:.2f}) | {n / stacked:.0f} ({bare / stacked:.2f}) | "
        f"{n / ram:.0f} ({bare / ram:.2f}) | {n / on_disk:.0f} ({bare / on_disk:.2f}) | "
        f"{size / 2**20:.0f} MiB |"
    )


def main() -> None:
    print(
        f"torch {torch.__version__} on {DEVICE} {torch.cuda.get_device_name() if DEVICE == 'cuda' else ''}"
    )
    cfg = GPTNeoXConfig(**DIMS)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, cfg.vocab_size, size=(N_TOKENS // WINDOW, WINDOW)).astype(np.int32)
    windows = Windows(ids, np.full(len(ids), WINDOW, np.int64))
    flops = forward_flops(model_size(cfg), WINDOW) * N_TOKENS
    shm = tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    disk = tempfile.mkdtemp(dir="/tmp")
    print(
        "| dtype | bare forward | TFLOP/s | + copy per layer | + one copy per batch | extract (RAM disk) | extract (disk) | store |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for dtype in (torch.bfloat16, torch.float32):
        print(measure(cfg, dtype, ids, windows, flops, shm, disk), flush=True)
        if DEVICE == "cuda":
            torch.cuda.empty_cache()
    dd = subprocess.run(
        ["dd", "if=/dev/zero", f"of={disk}/dd", "bs=16M", "count=64", "conv=fdatasync"],
        capture_output=True, text=True,
    )  # fmt: skip
    print(f"\ndisk floor, dd of 1 GiB to /tmp: {dd.stderr.strip().splitlines()[-1]}")
    shutil.rmtree(disk, ignore_errors=True)
    shutil.rmtree(shm, ignore_errors=True)
    root = os.environ.get("P410", "/tmp/p410")
    for i, step in enumerate(("step0", "step1")):
        torch.manual_seed(i)
        GPTNeoXForCausalLM(cfg).half().save_pretrained(f"{root}/{step}")
    print(f"saved two random checkpoints of this shape to {root}")


if __name__ == "__main__":
    main()
