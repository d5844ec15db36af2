"""Snakemake adapter: singular values and singular entropy of the LM head of one checkpoint
(the weight W of its unembedding; a soft-cap, if any, acts after W and is only recorded)."""

import json

from repgeom.activations.architectures import Unembedding
from repgeom.activations.models import Checkpoint
from repgeom.bottleneck.spectrum import lm_head_spectrum
from repgeom.io import write_dataset
from repgeom.provenance import provenance
from repgeom.runtime import log_to, set_threads

log_to(snakemake.log[0])
set_threads(snakemake.threads)
p = snakemake.params
model = Checkpoint.from_source(p.source).load("float32", "cpu")
unembedding = Unembedding.of(model, f"{p.model} {p.step}")
attrs = provenance(
    {"method": p.method, "source": p.source},
    model=p.model,
    step=p.step,
    model_source=json.dumps(p.source),
    tied_to_input_embedding=bool(model.config.tie_word_embeddings),
    head_has_bias=unembedding.bias is not None,
    logit_softcapping="none" if unembedding.softcap is None else unembedding.softcap,
    logits=unembedding.describe(),
    matrix="W (V × d), the weight of the model's LM head (output embedding)",
)
ds = lm_head_spectrum(unembedding.weight, p.method, attrs=attrs)
write_dataset(ds, snakemake.output[0])
print(p.step, float(ds.singular_entropy), ds.attrs["svd_route"])
