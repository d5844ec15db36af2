"""Extraction throughput vs a bare forward pass of the base model with output_hidden_states,
and peak memory.

Run by hand: python benchmarks/bench_extraction.py
Targets (issue 2): extraction ≥ 90% of the bare forward pass's tokens/s on the same batches;
peak memory (RSS) of extraction does not grow with the number of tokens.
Throughput: the two alternate, 7 times each, best kept. Each memory measurement runs in a fresh
subprocess so peaks do not mix.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

HIDDEN = dict(
    hidden_size=256,
    num_hidden_layers=6,
    num_attention_heads=4,
    intermediate_size=1024,
    max_position_embeddings=128,
    vocab_size=4096,
)
REPEATS = 7  # alternating bare / extraction, best of each


def model_and_windows(n_windows: int, window: int = 128, config: dict = HIDDEN):
    """A GPT-NeoX causal LM with random weights and windows of uniform random token ids."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    from repgeom.data.tokens import Windows

    torch.manual_seed(0)
    model = GPTNeoXForCausalLM(GPTNeoXConfig(**config)).eval()
    rng = np.random.default_rng(0)
    ids = rng.integers(0, config["vocab_size"], size=(n_windows, window)).astype(np.int32)
    return model, Windows(ids, np.full(n_windows, window, dtype=np.int32))


def bare_forward(base: torch.nn.Module, w, rows: list[np.ndarray]) -> None:
    """The base model over the batches with hidden states and no key/value cache, as
    extraction runs it, keeping nothing."""
    with torch.inference_mode():
        for r in rows:
            ids = torch.from_numpy(w.ids[r].astype(np.int64))
            base(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                output_hidden_states=True,
                use_cache=False,
            )


def throughput(n_windows: int = 256, batch: int = 32) -> None:
    from repgeom.activations.extraction import batches_in_order, extract

    torch.set_num_threads(1)
    model, w = model_and_windows(n_windows)
    rows = batches_in_order(len(w.lengths), batch)
    base = model.base_model  # what extraction runs: no LM-head logits
    with torch.inference_mode():  # warm-up
        base(input_ids=torch.from_numpy(w.ids[rows[0]].astype(np.int64)), output_hidden_states=True)
    bare, ours = [], []
    for _ in range(REPEATS):
        t = time.perf_counter()
        bare_forward(base, w, rows)
        bare.append(time.perf_counter() - t)
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            extract(model, w, f"{tmp}/a.zarr", batch, {}, eval_loss=False)
            ours.append(time.perf_counter() - t)
    n = w.n_tokens
    print(f"bare forward:  {n / min(bare):9.0f} tokens/s")
    print(
        f"extraction:    {n / min(ours):9.0f} tokens/s  (to Zarr, float16, all {HIDDEN['num_hidden_layers'] + 1} layers)"
    )
    print(f"ratio: {min(bare) / min(ours):.3f}  (target ≥ 0.90)")


def peak_rss(n_windows: int) -> None:
    from repgeom.activations.extraction import extract

    model, w = model_and_windows(n_windows)
    with tempfile.TemporaryDirectory() as tmp:
        extract(model, w, f"{tmp}/a.zarr", 32, {}, eval_loss=True)
    print(
        json.dumps(
            {
                "tokens": int(w.n_tokens),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def memory() -> None:
    for n in (64, 512, 2048):
        out = (
            subprocess.run(
                [sys.executable, __file__, "peak", str(n)],
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        r = json.loads(out)
        print(f"{r['tokens']:8d} tokens: peak RSS {r['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    if sys.argv[1:2] == ["peak"]:
        peak_rss(int(sys.argv[2]))
    else:
        throughput()
        memory()
