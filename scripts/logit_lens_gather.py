"""Snakemake adapter: the logit lens of one model over its checkpoints and corpora."""

from repgeom.io import write_dataset
from repgeom.logit_lens.datasets import lens_dataset
from repgeom.provenance import provenance
from repgeom.runtime import log_to
from repgeom.steps import as_checkpoints

log_to(snakemake.log[0])
p = snakemake.params
steps = as_checkpoints(p.checkpoints)
keys = [(s.label, c) for s in steps for c in p.corpora]
ds = lens_dataset(dict(zip(keys, snakemake.input, strict=True)), steps, p.corpora, p.model)
ds.attrs = provenance({"steps": [s.label for s in steps], "corpora": p.corpora}, model=p.model)
write_dataset(ds, snakemake.output[0])
print(ds)
