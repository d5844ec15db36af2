"""Snakemake adapter: the fingerprints of one checkpoint's stored weights."""

from repgeom.activations.weights import checkpoint_directory, fingerprint_checkpoint, weight_record
from repgeom.io import write_json
from repgeom.runtime import log_to

log_to(snakemake.log[0])
s = snakemake.params.source
directory = checkpoint_directory(s["path"], s["revision"], s["commit"])
write_json(weight_record(fingerprint_checkpoint(directory, snakemake.threads)), snakemake.output[0])
