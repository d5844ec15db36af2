"""CUDA against the CPU: repgeom's extraction of a tiny decoder (GPT-NeoX, with eval loss) and
encoder (BERT), windows of one length and of many, float32 and bfloat16 on the GPU against
float32 on the CPU: hidden states, per-layer anisotropy (float64 numpy) and the eval loss.

Run on the GPU machine by benchmarks/gpu_check.sh (on a CPU it compares CPU bfloat16)."""

from __future__ import annotations

import tempfile

import numpy as np
import torch
import xarray as xr
from transformers import BertConfig, BertForMaskedLM, GPTNeoXConfig, GPTNeoXForCausalLM

from repgeom.activations.extraction import extract
from repgeom.data.tokens import Windows

V, D, L, T = 512, 128, 4, 128


def anisotropy(x: np.ndarray) -> float:
    """σ₁²/‖X_c‖²_F of the centred rows, float64."""
    x = x.astype(np.float64) - x.mean(0)
    s = np.linalg.svd(x, compute_uv=False)
    return float(s[0] ** 2 / (s**2).sum())


def run(model, windows, device, dtype, path, eval_loss):
    model = model.to(device=device, dtype=dtype).eval()
    summary = extract(model, windows, path, 16, {}, eval_loss=eval_loss)
    return xr.open_zarr(path), summary


def main() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    dims = dict(hidden_size=D, num_hidden_layers=L, num_attention_heads=4, intermediate_size=4 * D)
    models = {
        "gpt_neox": (GPTNeoXForCausalLM(GPTNeoXConfig(**dims, vocab_size=V)), True),
        "bert": (BertForMaskedLM(BertConfig(**dims, vocab_size=V)), False),
    }
    ids = rng.integers(0, V, size=(64, T)).astype(np.int32)
    shapes = {
        "fixed": Windows(ids, np.full(64, T, np.int64)),
        "varlen": Windows(ids, rng.integers(5, T + 1, size=64)),
    }
    gpu = torch.cuda.is_available()
    targets = (
        [("cuda", torch.float32), ("cuda", torch.bfloat16)] if gpu else [("cpu", torch.bfloat16)]
    )
    worst = {}
    print(
        "| model | windows | device | dtype | hidden max|Δ|/max|x| | anisotropy max rel Δ | eval loss CPU → device |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, (model, loss) in models.items():
        for shape, windows in shapes.items():
            with tempfile.TemporaryDirectory() as tmp:
                ref, ref_summary = run(
                    model, windows, "cpu", torch.float32, f"{tmp}/ref.zarr", loss
                )
                a = ref.hidden_state.values.astype(np.float64)
                for device, dtype in targets:
                    got, summary = run(model, windows, device, dtype, f"{tmp}/{device}.zarr", loss)
                    b = got.hidden_state.values.astype(np.float64)
                    hidden = float(np.abs(a - b).max() / np.abs(a).max())
                    aniso = max(
                        abs(anisotropy(a[i]) - anisotropy(b[i])) / anisotropy(a[i])
                        for i in range(a.shape[0])
                    )
                    lossed = (
                        f"{ref_summary['eval_loss']:.6f} → {summary['eval_loss']:.6f}"
                        if loss
                        else "–"
                    )
                    tag = str(dtype).removeprefix("torch.")
                    print(
                        f"| {name} | {shape} | {device} | {tag} | {hidden:.2e} | {aniso:.2e} | {lossed} |"
                    )
                    worst[tag] = max(worst.get(tag, 0.0), aniso)
                model.to("cpu", torch.float32)
    # float32 on the GPU must agree to float16 storage rounding; bfloat16 to its own precision
    limits = {"float32": 1e-3, "bfloat16": 5e-2}
    bad = {k: v for k, v in worst.items() if v > limits[k]}
    print(f"\nworst anisotropy difference per dtype: {worst}; limits {limits}")
    if bad:
        raise SystemExit(f"values differ beyond the limits: {bad}")


if __name__ == "__main__":
    main()
