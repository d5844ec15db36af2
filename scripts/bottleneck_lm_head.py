"""Snakemake adapter: singular values and singular entropy of the LM head of one checkpoint."""

import json

from repgeom.activations.models import Checkpoint, lm_head
from repgeom.bottleneck.spectrum import lm_head_spectrum
from repgeom.io import write_dataset
from repgeom.provenance import provenance
from repgeom.runtime import log_to, set_threads

log_to(snakemake.log[0])
set_threads(snakemake.threads)
p = snakemake.params
model = Checkpoint.from_source(p.source).load("float32", "cpu")
head = lm_head(model, f"{p.model} {p.step}")
attrs = provenance(
    {"method": p.method, "source": p.source},
    model=p.model,
    step=p.step,
    model_source=json.dumps(p.source),
    tied_to_input_embedding=bool(model.config.tie_word_embeddings),
    head_has_bias=getattr(head, "bias", None) is not None,
    matrix="model.get_output_embeddings().weight (V × d)",
)
ds = lm_head_spectrum(head.weight, p.method, attrs=attrs)
write_dataset(ds, snakemake.output[0])
print(p.step, float(ds.singular_entropy), ds.attrs["svd_route"])
