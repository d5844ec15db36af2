"""Standard errors of the logit lens per layer at a token budget (what logit_lens.tokens buys).

Run by hand, from the repository root:

    python benchmarks/lens_standard_error.py CHECKPOINT TOKENS_STORE [--tokens N] [--max-tokens M]
    python benchmarks/lens_standard_error.py pythia-70m [--tokens N] [--max-tokens M]

The first form reads a trained checkpoint and the eval split of a token store of the workflow
(e.g. the default config's decoder: results/models/decoder/step1024 and
results/tokens/bpe/python_docs.zarr); the second builds GPT-NeoX at Pythia-70m's dims (vocabulary
50 304) with random weights on windows of 512 uniform random token ids. Extraction runs with the
lens on a seeded sample of N positions (default: the schema's logit_lens.tokens) of at most M
tokens (default 16 384), one thread, and prints each layer's loss and top-1 agreement with their
standard errors (std/√n of the per-token values) in both decodings.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch
import xarray as xr

sys.path.insert(0, str(Path(__file__).parent))
from bench_extraction import model_and_windows  # noqa: E402
from bench_real_vocab import SHAPES, WINDOW, config  # noqa: E402


def option(args: list[str], name: str, default: int) -> int:
    """The integer value of ``--name`` in args (removed from them), or the default."""
    if name not in args:
        return default
    i = args.index(name)
    value = int(args[i + 1])
    del args[i : i + 2]
    return value


def main() -> None:
    from repgeom.activations.extraction import extract
    from repgeom.activations.lens import LensSample
    from repgeom.activations.models import Checkpoint
    from repgeom.data.tokens import read_tokens
    from repgeom.workflow.config import schema_defaults

    args = sys.argv[1:]
    budget = option(args, "--tokens", schema_defaults("logit_lens")["tokens"])
    max_tokens = option(args, "--max-tokens", 16384)
    torch.set_num_threads(1)
    if args[0] == "pythia-70m":
        hidden, layers, heads, inter, _ = SHAPES["70m"]
        model, w = model_and_windows(
            max_tokens // WINDOW, WINDOW, config(hidden, layers, heads, inter)
        )
    else:
        model = Checkpoint(args[0]).load("float32", "cpu")
        w = read_tokens(args[1], "eval", max_tokens)
    with tempfile.TemporaryDirectory() as tmp:
        summary = extract(model, w, f"{tmp}/s.zarr", 4, {}, True, LensSample(budget, 0))
        ds = xr.open_zarr(f"{tmp}/s.zarr").load()
    print(
        f"{args[0]}: {w.n_tokens} tokens, eval loss {summary['eval_loss']:.4f}, "
        f"lens on {summary['logit_lens_tokens']} positions (budget {budget})"
    )
    print("layer  decoding    loss ± SE               agreement ± SE")
    for layer in ds.layer.values:
        for decoding in ds.decoding.values:
            at = {"layer": layer, "decoding": decoding}
            print(
                f"{int(layer):5d}  {str(decoding):10s}  "
                f"{float(ds.logit_lens_loss.sel(at)):8.4f} ± {float(ds.logit_lens_loss_se.sel(at)):.4f}"
                f"       {float(ds.logit_lens_agreement.sel(at)):.4f} ± "
                f"{float(ds.logit_lens_agreement_se.sel(at)):.4f}"
            )


if __name__ == "__main__":
    main()
