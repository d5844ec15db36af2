"""Snakemake adapter: eval loss and last-layer mean cosine of one model over steps and corpora."""

import json

from repgeom.activations.store import ActivationStore
from repgeom.bottleneck.datasets import cosine_dataset, eval_loss_dataset, last_layer_cosine
from repgeom.io import write_dataset
from repgeom.metrics.gather import with_model
from repgeom.provenance import provenance
from repgeom.runtime import log_to
from repgeom.steps import as_checkpoints

log_to(snakemake.log[0])
p = snakemake.params
checkpoints = as_checkpoints(p.checkpoints)
steps = [s.label for s in checkpoints]
keys = [(s, c) for s in steps for c in p.corpora]
stores = {k: ActivationStore(path) for k, path in zip(keys, snakemake.input, strict=True)}
attrs = provenance(
    {"steps": steps, "corpora": p.corpora},
    model=p.model,
    corpus_sha256=json.dumps({c: stores[(steps[-1], c)].attrs["corpus_sha256"] for c in p.corpora}),
    model_source=json.dumps({s: stores[(s, p.corpora[0])].attrs["model_source"] for s in steps}),
    checkpoint_fingerprint=json.dumps(
        {s: stores[(s, p.corpora[0])].attrs.get("checkpoint_fingerprint", "") for s in steps}
    ),
)
loss = eval_loss_dataset({k: s.attrs for k, s in stores.items()}, checkpoints, p.corpora, attrs)
write_dataset(with_model(loss, p.model), snakemake.output.eval_loss)
cosines = {k: last_layer_cosine(s) for k, s in stores.items()}
cosine = cosine_dataset(cosines, checkpoints, p.corpora, attrs)
write_dataset(with_model(cosine, p.model), snakemake.output.cosine)
print(loss)
