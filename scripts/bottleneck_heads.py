"""Snakemake adapter: rank-restricted heads on the frozen final representations of a checkpoint.

Train: the final-norm hidden states of a seeded sample of train windows, written batch by batch
to the rule's temporary Zarr store and streamed back in blocks. Eval: the checkpoint's eval
activation store (the same layer). Targets: the next token within each window. Heads: from
the model's unembedding (W₀, b₀), their logits soft-capped as the model's when it caps them
(:mod:`repgeom.bottleneck.checkpoint_heads`).
"""

import json

from repgeom.activations.models import Checkpoint, check_dtype
from repgeom.activations.store import ActivationStore
from repgeom.bottleneck.checkpoint_heads import CheckpointHeads
from repgeom.bottleneck.options import HeadTraining
from repgeom.io import write_dataset
from repgeom.options import build
from repgeom.provenance import provenance
from repgeom.runtime import log_to, memory_exit, resolve_device, set_threads

log_to(snakemake.log[0])
set_threads(snakemake.threads)
p = snakemake.params
device = resolve_device(p.heads["device"])
check_dtype(p.extraction["dtype"], device)
store = ActivationStore(snakemake.input.store)
model = Checkpoint.from_source(p.source).load(p.extraction["dtype"], device)
cfg = build(HeadTraining, p.heads, where="bottleneck.heads", extra=True)
with memory_exit("config key 'bottleneck.heads'"):  # before anything big is allocated
    job = CheckpointHeads.of(model, store, cfg, (p.model, p.step), p.memory_mb)
labels = {"model": p.model, "step": p.step}
out = snakemake.output.features
features = job.write_features(
    model, snakemake.input.tokens, out, p.extraction["batch_size"], labels
)
del model  # the heads train on the features alone
attrs = provenance(
    {"heads": p.heads, "extraction": p.extraction, "source": p.source},
    **labels,
    corpus=p.corpus,
    model_source=json.dumps(p.source),
    corpus_sha256=store.attrs["corpus_sha256"],
)
ds = job.train(out, features, device, attrs)
write_dataset(ds, snakemake.output.heads)
print(ds)
