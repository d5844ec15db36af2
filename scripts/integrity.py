"""Snakemake adapter: a model's duplicates from its checkpoints' fingerprints; the gate."""

import logging

from repgeom.activations.weights import duplicates_message, integrity_dataset, read_weight_records
from repgeom.io import write_dataset
from repgeom.provenance import provenance
from repgeom.runtime import fail, log_to
from repgeom.steps import as_checkpoints

log_to(snakemake.log[0])
p = snakemake.params
prints = read_weight_records(snakemake.input)
ds = integrity_dataset(as_checkpoints(p.checkpoints), prints, p.model)
message = duplicates_message(p.model, ds, p.labels_key, partial=False)
if message and p.duplicates == "error":
    fail(message)
if message:
    logging.warning("kept (integrity.duplicates: keep): %s", message)
ds.attrs.update(provenance({"integrity": {"duplicates": p.duplicates}}, model=p.model))
write_dataset(ds, snakemake.output[0])
