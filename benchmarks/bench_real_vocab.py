"""Extraction at a real vocabulary: what the eval loss and the logit lens cost.

Run by hand: python benchmarks/bench_real_vocab.py [70m] [160m] [410m] [--rounds N]
GPT-NeoX at Pythia's published dims (vocabulary 50 304, random weights), windows of 512 uniform
random token ids, batch 4, one thread. For each shape, side by side in one process, rounds
alternating, best of each:

- bare: the base model's forward with hidden states and no key/value cache, keeping nothing;
- (a) extraction asked for nothing; (b) with the eval loss; (c) with the eval loss and the logit
  lens at its default budget (``logit_lens.tokens`` of the schema);
- the head's matmuls alone: every LM-head call of (b) and (c), recorded while they ran, timed
  again as bare ``F.linear`` products of the same shapes on the same weights.

Ratios: (a) against the bare forward (target ≥ 0.85); (b) and (c) against their floor, the bare
forward plus their head matmuls (target ≥ 0.8), and against the bare forward. First, the chunked
head + cross-entropy (``head_token_nll``) against its matmuls alone on the same chunks (target
≤ 1.3×). Times are wall clock; CPU-time ratios (all threads) are printed next to them, since the
machine may be shared.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from unittest import mock

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_extraction import bare_forward, model_and_windows  # noqa: E402

if TYPE_CHECKING:
    from repgeom.activations.lens import LensSample
    from repgeom.data.tokens import Windows

VOCAB = 50304
WINDOW, BATCH = 512, 4
# hidden, layers, heads, intermediate (Pythia's published dims), tokens extracted
SHAPES = {
    "70m": (512, 6, 8, 2048, 16384),
    "160m": (768, 12, 12, 3072, 8192),
    "410m": (1024, 24, 16, 4096, 4096),
}


def config(hidden: int, layers: int, heads: int, inter: int) -> dict:
    """A Pythia-shaped GPTNeoXConfig's keyword arguments."""
    return dict(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=inter,
        max_position_embeddings=2048,
        rotary_pct=0.25,
        vocab_size=VOCAB,
    )


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall, CPU) seconds of one call."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def head_versus_matmul(hidden: int, rows: int = 4096) -> None:
    """The chunked head + cross-entropy against the same chunks' matmuls alone."""
    from repgeom.activations.loss import chunk_bounds, head_token_nll

    torch.manual_seed(0)
    head = torch.nn.Linear(hidden, VOCAB, bias=False)
    x = torch.randn(rows, hidden)
    targets = torch.randint(0, VOCAB, (rows,))
    chunks = chunk_bounds(rows, VOCAB)

    def matmuls() -> None:
        for s in chunks:
            torch.nn.functional.linear(x[s], head.weight)

    best: dict[str, list[float]] = {"mm": [np.inf, np.inf], "ce": [np.inf, np.inf]}
    with torch.inference_mode():
        head_token_nll(head, x[:64], targets[:64], VOCAB)  # warm-up
        for _ in range(3):
            for key, fn in (
                ("mm", matmuls),
                ("ce", lambda: head_token_nll(head, x, targets, VOCAB)),
                ("ce+top", lambda: head_token_nll(head, x, targets, VOCAB, True)),
            ):
                wall, cpu = timed(fn)
                b = best.setdefault(key, [np.inf, np.inf])
                b[0], b[1] = min(b[0], wall), min(b[1], cpu)
    mm = best["mm"]
    print(
        f"  head + cross-entropy, d {hidden}, {rows} rows in chunks of {chunks[0].stop}: "
        f"matmuls {mm[0]:.2f} s; loss {best['ce'][0] / mm[0]:.3f}× "
        f"(CPU {best['ce'][1] / mm[1]:.3f}×), loss + top-1 {best['ce+top'][0] / mm[0]:.3f}× "
        f"(CPU {best['ce+top'][1] / mm[1]:.3f}×)  (target ≤ 1.3)"
    )


def recording(
    calls: dict[str, list[int]], key: str
) -> Callable[[torch.nn.Module], Callable[[torch.Tensor], torch.Tensor]]:
    """A stand-in for ``causal_logits`` that records the rows of each LM-head call in
    ``calls[key]``."""
    from repgeom.activations import lens

    real = lens.causal_logits

    def make(m: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
        inner = real(m)

        def logits(h: torch.Tensor) -> torch.Tensor:
            calls[key].append(h.shape[0])
            return inner(h)

        return logits

    return make


def extraction_job(
    model: torch.nn.Module,
    w: Windows,
    calls: dict[str, list[int]],
    key: str,
    eval_loss: bool,
    sample: LensSample | None,
) -> Callable[[], None]:
    """One extraction into a temporary store, its LM-head calls recorded in ``calls[key]``."""
    from repgeom.activations import extraction, lens
    from repgeom.activations.extraction import extract

    def fn() -> None:
        calls[key] = []
        rec = recording(calls, key)
        with (
            tempfile.TemporaryDirectory() as tmp,
            mock.patch.object(extraction, "causal_logits", rec),
            mock.patch.object(lens, "causal_logits", rec),
        ):
            extract(model, w, f"{tmp}/s.zarr", BATCH, {}, eval_loss, sample)

    return fn


def head_matmuls(calls: list[int], hidden: int, weight: torch.Tensor) -> Callable[[], None]:
    """The recorded LM-head calls again, as bare ``F.linear`` products of the same shapes."""

    def fn() -> None:
        with torch.inference_mode():
            for n in calls:
                torch.nn.functional.linear(torch.randn(n, hidden), weight)

    return fn


def best_times(
    jobs: dict[str, Callable[[], None]],
    calls: dict[str, list[int]],
    hidden: int,
    weight: torch.Tensor,
    rounds: int,
) -> dict[str, np.ndarray]:
    """Best (wall, CPU) of each job over rounds alternating, and of the head matmuls of (b) and
    (c) as ``mm_b``, ``mm_c``, each round after the jobs."""
    best: dict[str, np.ndarray] = {}
    for _ in range(rounds):
        for key, fn in jobs.items():
            best[key] = np.minimum(best.get(key, np.inf), timed(fn))
        for key in ("b", "c"):
            mm = head_matmuls(calls[key], hidden, weight)
            best[f"mm_{key}"] = np.minimum(best.get(f"mm_{key}", np.inf), timed(mm))
    return best


def report(best: dict[str, np.ndarray], n: int, calls: dict[str, list[int]]) -> None:
    """Print tokens/s of each job and the ratios against the bare forward and the floors."""
    bare = best["bare"]
    print(f"  bare forward         {bare[0]:7.1f} s  {n / bare[0]:7.0f} tok/s")
    print(
        f"  (a) nothing asked    {best['a'][0]:7.1f} s  {n / best['a'][0]:7.0f} tok/s  "
        f"{bare[0] / best['a'][0]:.3f} of bare (CPU {bare[1] / best['a'][1]:.3f})  (target ≥ 0.85)"
    )
    for key, what in (("b", "eval loss"), ("c", "eval loss + lens")):
        t, mm = best[key], best[f"mm_{key}"]
        floor = bare + mm
        print(
            f"  ({key}) {what:16s} {t[0]:7.1f} s  {n / t[0]:7.0f} tok/s  "
            f"{bare[0] / t[0]:.3f} of bare; floor {floor[0]:.1f} s (head matmuls {mm[0]:.1f} s, "
            f"{sum(calls[key])} rows): {floor[0] / t[0]:.3f} of floor "
            f"(CPU {floor[1] / t[1]:.3f})  (target ≥ 0.8)"
        )


def run_shape(name: str, rounds: int) -> None:
    """Bare forward, (a), (b), (c) and the head matmuls of one shape, side by side."""
    from repgeom.activations.extraction import batches_in_order
    from repgeom.activations.lens import LensSample
    from repgeom.workflow.config import schema_defaults

    hidden, layers, heads, inter, tokens = SHAPES[name]
    budget = schema_defaults("logit_lens")["tokens"]
    print(f"Pythia-{name} shape: d {hidden}, {layers} layers, {tokens} tokens, lens {budget}")
    head_versus_matmul(hidden)
    model, w = model_and_windows(tokens // WINDOW, WINDOW, config(hidden, layers, heads, inter))
    rows = batches_in_order(len(w.lengths), BATCH)
    weight = model.get_output_embeddings().weight
    calls: dict[str, list[int]] = {}
    sample = LensSample(budget, 0)
    jobs = {
        "bare": lambda: bare_forward(model.base_model, w, rows),
        "a": extraction_job(model, w, calls, "a", False, None),
        "b": extraction_job(model, w, calls, "b", True, None),
        "c": extraction_job(model, w, calls, "c", True, sample),
    }
    bare_forward(model.base_model, w, rows[:1])  # warm-up
    report(best_times(jobs, calls, hidden, weight, rounds), w.n_tokens, calls)


def main() -> None:
    args = sys.argv[1:]
    rounds = 2
    if "--rounds" in args:
        i = args.index("--rounds")
        rounds = int(args[i + 1])
        del args[i : i + 2]
    torch.set_num_threads(1)
    for name in args or list(SHAPES):
        run_shape(name, rounds)


if __name__ == "__main__":
    main()
