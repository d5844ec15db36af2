"""Snakemake adapter: the logit lens of one model over its checkpoints and corpora."""

from repgeom.io import write_dataset
from repgeom.logit_lens.study import lens_dataset
from repgeom.workflow.provenance import provenance
from repgeom.workflow.runtime import log_to

log_to(snakemake.log[0])
p = snakemake.params
keys = [(s, c) for s in p.steps for c in p.corpora]
ds = lens_dataset(dict(zip(keys, snakemake.input, strict=True)), p.steps, p.corpora, p.model)
ds.attrs = provenance({"steps": p.steps, "corpora": p.corpora}, model=p.model)
write_dataset(ds, snakemake.output[0])
print(ds)
