"""Snakemake adapter: rank-restricted heads on the frozen final representations of a checkpoint.

Train: the final-norm hidden states of a seeded sample of train windows, written batch by batch
to the rule's temporary Zarr store and streamed back in blocks. Eval: the checkpoint's eval
activation store (the same layer). Targets: the next token within each window. Heads: from
the model's unembedding (W₀, b₀), their logits soft-capped as the model's when it caps them.
"""

import json

import numpy as np

from repgeom.activations.architectures import Unembedding
from repgeom.activations.models import Checkpoint, check_dtype
from repgeom.activations.store import ActivationStore
from repgeom.bottleneck.features import (
    final_layer,
    next_token_blocks,
    sample_windows,
    write_final_features,
)
from repgeom.bottleneck.heads import HeadTraining, rank_restricted_heads
from repgeom.bottleneck.memory import check_heads_memory, check_ranks, heads_memory_estimate
from repgeom.io import write_dataset
from repgeom.options import build
from repgeom.provenance import provenance
from repgeom.runtime import log_to, memory_exit, resolve_device, set_threads

BLOCK = 8192  # rows read from a store at a time

log_to(snakemake.log[0])
set_threads(snakemake.threads)
p = snakemake.params
o = p.heads
device = resolve_device(o["device"])
check_dtype(p.extraction["dtype"], device)
store = ActivationStore(snakemake.input.store)
layer, layer_note = final_layer(store.attrs, store.layers)
model = Checkpoint.from_source(p.source).load(p.extraction["dtype"], device)
unembedding = Unembedding.of(model, f"{p.model} {p.step}")
w0 = unembedding.weight.detach().float().cpu().numpy()
b0 = None if unembedding.bias is None else unembedding.bias.detach().float().cpu().numpy()
v, d = w0.shape
check_ranks(o["ranks"], v, d, f"model {p.model!r}")
cfg = build(HeadTraining, o, where="bottleneck.heads", extra=True)
estimate = heads_memory_estimate(
    v,
    d,
    o["ranks"],
    cfg.batch_size,
    cfg.token_budget,
    cfg.shuffle_buffer,
    BLOCK,
    cfg.init,
    cfg.bias,
)
model_bytes = sum(t.numel() * t.element_size() for t in model.parameters())
with memory_exit("config key 'bottleneck.heads'"):  # before anything big is allocated
    budget = None if p.memory_mb is None else p.memory_mb * 2**20
    check_heads_memory(estimate, budget, extra=model_bytes, what=f"heads of {p.model} {p.step}")

windows = sample_windows(snakemake.input.tokens, "train", cfg.token_budget, o["seed"])
feature_info = write_final_features(
    model,
    windows,
    layer,
    snakemake.output.features,
    p.extraction["batch_size"],
    {"model": p.model, "step": p.step},
)
softcap = unembedding.softcap
del model, unembedding, windows


def batches_of(path, rows):
    """Store blocks re-cut into batches of at most ``rows`` rows (bounded logits at eval)."""
    for x, y in next_token_blocks(path, layer, BLOCK):
        for s in range(0, len(y), rows):
            yield x[s : s + rows], y[s : s + rows]


attrs = provenance(
    {"heads": o, "extraction": p.extraction, "source": p.source},
    model=p.model,
    step=p.step,
    corpus=p.corpus,
    model_source=json.dumps(p.source),
    corpus_sha256=store.attrs["corpus_sha256"],
    layer=layer,
    layer_note=layer_note,
    final_norm_index=int(store.attrs.get("final_norm_index", -1)),
    n_train_windows=feature_info["n_sequences"],
    train_feature_dtype=feature_info["layer_dtype"],
    model_eval_loss=float(store.attrs.get("eval_loss", np.nan)),
    estimated_peak_bytes=estimate["total"],
    targets="next token within the same window (the last token of a window has none)",
)
ds = rank_restricted_heads(
    lambda: next_token_blocks(snakemake.output.features, layer, BLOCK),
    batches_of(snakemake.input.store, cfg.batch_size),
    v,
    d,
    cfg,
    o["ranks"],
    w0,
    b0,
    str(device),
    attrs,
    softcap,
)
write_dataset(ds, snakemake.output.heads)
print(ds)
