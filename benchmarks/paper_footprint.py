"""Disk and memory of each paper config, computed from the models' sizes (README table).

Run by hand: python benchmarks/paper_footprint.py
The hub models are not on this machine, so their published dimensions (the config.json of each
repository, in :mod:`repgeom.workflow.published`) build each model on PyTorch's meta device, which gives its exact
parameter count without any weight. Everything else comes from the paper config and
:mod:`repgeom.workflow.footprint`. Stores of fixed windows are counted at extraction.max_tokens (an upper
bound: a small eval split holds fewer tokens); stores of sentences (one row each, as many
tokens as the sentence has) are given per 10 000 tokens.
"""

from __future__ import annotations

from pathlib import Path

import torch
import transformers

from repgeom.activations.size import ModelSize
from repgeom.runtime import format_bytes
from repgeom.workflow import footprint
from repgeom.workflow.config import load_yaml
from repgeom.workflow.published import PUBLISHED

ROOT = Path(__file__).resolve().parents[1]


def size_of(repo: str) -> ModelSize:
    """The model's size from its published dimensions (meta device: no weights)."""
    cfg_class, model_class, dims, dtype = PUBLISHED[repo]
    cfg = getattr(transformers, cfg_class)(**dims)
    with torch.device("meta"):
        model = getattr(transformers, model_class)(cfg)
    n = sum(p.numel() for p in model.parameters())
    return ModelSize.from_config({**cfg.to_dict(), "torch_dtype": dtype}, n)


def paper(path: Path) -> None:
    cfg = load_yaml(path)
    ex = cfg.get("extraction", {})
    corpora = ex.get("corpora")
    stream = list(cfg["corpora"] if corpora is None else corpora)
    groups = cfg.get("languages", {}).get("groups", []) + [
        {"corpora": c} for c in cfg.get("languages", {}).get("grammaticality", [])
    ]
    sentences = []
    for g in groups:
        c = cfg["corpora"][g["corpora"]]
        sentences += c.get("languages", ["good", "bad"])
    print(f"\n### {path.name}\n")
    print(
        "| model | parameters (saved dtype) | HF cache per revision | revisions | "
        "activation stores | extraction job memory |"
    )
    print("|---|---|---|---|---|---|")
    total_cache = total_stores = 0
    for name, model in cfg["models"].items():
        size = size_of(model["id"])
        window = cfg["tokenizers"][model["tokenizer"]]["window"]
        revisions = len(model["revisions"])
        cache = footprint.weights_bytes(size)
        tokens = ex.get("max_tokens", 16384)
        per_store = footprint.store_bytes(size, tokens, tokens // window)
        n_stream = revisions * len(stream)
        n_sent = len(sentences) if sentences else 0
        per_10k = footprint.store_bytes(size, 10_000, 0)
        stores = n_stream * per_store
        causal = "CausalLM" in PUBLISHED[model["id"]][1] or "LMHead" in PUBLISHED[model["id"]][1]
        memory = footprint.extraction_bytes(
            size,
            ex.get("dtype", "float32"),
            ex.get("batch_size", 16),
            window,
            causal and ex.get("eval_loss") is not False,
            bool(sentences),
        )
        total_cache += revisions * cache
        total_stores += stores
        count = f"{n_stream} × {format_bytes(per_store)}" if n_stream else "–"
        if n_sent:
            count += f"; {n_sent} sentence stores, {format_bytes(per_10k)} per 10k tokens"
        print(
            f"| {name} | {size.n_params / 1e6:.1f} M ({size.saved_dtype}) | {format_bytes(cache)} | "
            f"{revisions} | {count} | {format_bytes(memory)} |"
        )
    stored = (
        f"≤ {format_bytes(total_stores)} of fixed-window stores"
        if total_stores
        else "sentence stores only"
    )
    print(f"\nHF cache: {format_bytes(total_cache)}; activations: {stored}")


if __name__ == "__main__":
    for path in sorted((ROOT / "config" / "paper").glob("*.yaml")):
        if load_yaml(path).get("models"):
            paper(path)
