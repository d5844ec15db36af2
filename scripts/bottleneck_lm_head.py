"""Snakemake adapter: singular values and singular entropy of the LM head of every checkpoint of
one model (one job per model: loading torch costs more than the SVD of a small head)."""

import json

from repgeom.bottleneck.spectrum import lm_head_spectrum
from repgeom.bottleneck.study import stack_steps
from repgeom.io import write_dataset
from repgeom.models import Checkpoint, lm_head
from repgeom.provenance import provenance
from repgeom.runtime import log_to, set_threads

log_to(snakemake.log[0])
set_threads(snakemake.threads)
p = snakemake.params
spectra = []
for step, source, path in zip(p.steps, p.sources, snakemake.output.steps, strict=True):
    model = Checkpoint.from_source(source).load("float32", "cpu")
    head = lm_head(model, f"{p.model} {step}")
    attrs = provenance(
        {"method": p.method, "source": source},
        model=p.model,
        step=step,
        model_source=json.dumps(source),
        tied_to_input_embedding=bool(model.config.tie_word_embeddings),
        head_has_bias=getattr(head, "bias", None) is not None,
        matrix="model.get_output_embeddings().weight (V × d)",
    )
    ds = lm_head_spectrum(head.weight, p.method, attrs=attrs)
    del model, head
    write_dataset(ds, path)
    spectra.append(ds)
    print(step, float(ds.singular_entropy), ds.attrs["svd_route"])
gathered = stack_steps(spectra, p.steps)
gathered.attrs["model"] = p.model
write_dataset(gathered, snakemake.output.gathered)
