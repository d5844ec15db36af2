"""Snakemake adapter: the weights dataset of one model (fingerprints, duplicates, distances)."""

from repgeom.activations.weights import (
    checkpoint_directory,
    read_weight_records,
    weights_dataset,
)
from repgeom.io import write_dataset
from repgeom.provenance import provenance
from repgeom.runtime import log_to
from repgeom.steps import as_checkpoints

log_to(snakemake.log[0])
p = snakemake.params
prints = read_weight_records(snakemake.input.fingerprints)
dirs = [checkpoint_directory(s["path"], s["revision"], s["commit"]) for s in p.sources]
checkpoints = list(zip(as_checkpoints(p.checkpoints), dirs, strict=True))
ds = weights_dataset(checkpoints, p.model, threads=snakemake.threads, prints=prints)
ds.attrs.update(provenance({"sources": p.sources}, model=p.model))
write_dataset(ds, snakemake.output[0])
