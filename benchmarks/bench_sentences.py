"""Extraction of sentences of 5–200 tokens: batching by length against corpus order.

Run by hand: python benchmarks/bench_sentences.py
Three passes over the same 512 sentences (batch 16, one thread), each timed three times, best
kept, side by side in one process:

- extraction as the workflow runs it (batches by length inside buckets, stored in corpus order);
- extraction with the same batch size in corpus order (each batch padded to its longest);
- a bare forward pass of the base model over the length-sorted batches (no store, no checks).

Tokens/s count real tokens only; the padding fraction is the share of computed positions that
are padding.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from unittest import mock

import numpy as np
import torch

CONFIG = dict(
    hidden_size=256,
    num_hidden_layers=6,
    num_attention_heads=4,
    intermediate_size=1024,
    max_position_embeddings=256,
    vocab_size=4096,
)
N, BATCH, REPEATS = 512, 16, 3


def main() -> None:
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    from repgeom.activations import extraction
    from repgeom.activations.store import ActivationStore
    from repgeom.data.tokens import Windows

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = GPTNeoXForCausalLM(GPTNeoXConfig(**CONFIG)).eval()
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 201, size=N).astype(np.int32)
    ids = rng.integers(0, CONFIG["vocab_size"], size=(N, 200)).astype(np.int32)
    w = Windows(ids, lengths)
    n_tokens = int(lengths.sum())

    def in_corpus_order(lengths, batch_size, bucket_rows=None):
        return [extraction.batches_in_order(len(lengths), batch_size)]

    def run_extract(corpus_order: bool) -> tuple[float, float]:
        best, padding = np.inf, 0.0
        for _ in range(REPEATS):
            with tempfile.TemporaryDirectory() as tmp:
                order = mock.patch.object(extraction, "length_batches", in_corpus_order)
                with order if corpus_order else contextlib.nullcontext():
                    t = time.perf_counter()
                    extraction.extract(model, w, f"{tmp}/s.zarr", BATCH, {}, eval_loss=False)
                    best = min(best, time.perf_counter() - t)
                padding = ActivationStore(f"{tmp}/s.zarr").attrs["padding_fraction"]
        return best, padding

    sorted_batches = [b for bucket in extraction.length_batches(lengths, BATCH) for b in bucket]
    base = model.base_model
    bare = np.inf
    for _ in range(REPEATS):
        t = time.perf_counter()
        with torch.inference_mode():
            for _ in extraction.forward_batches(base, w, sorted_batches, "bare"):
                pass
        bare = min(bare, time.perf_counter() - t)
    ours, pad_ours = run_extract(corpus_order=False)
    order, pad_order = run_extract(corpus_order=True)
    print(f"{N} sentences of 5–200 tokens ({n_tokens} tokens), batch {BATCH}, 1 thread")
    print(
        f"extraction, batched by length:  {n_tokens / ours:8.0f} tokens/s  padding {pad_ours:.3f}"
    )
    print(
        f"extraction, corpus order:       {n_tokens / order:8.0f} tokens/s  padding {pad_order:.3f}"
    )
    print(f"bare forward, sorted batches:   {n_tokens / bare:8.0f} tokens/s")
    print(
        f"by length / corpus order: {order / ours:.2f}×   extraction / bare forward: {bare / ours:.2f}"
    )


if __name__ == "__main__":
    main()
