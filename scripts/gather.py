"""Snakemake adapter: gather one metric of one model over steps and corpora."""

from repgeom.io import read_dataset, write_dataset
from repgeom.metrics.gather import gather, with_integrity, with_model
from repgeom.runtime import log_to
from repgeom.steps import as_checkpoints

log_to(snakemake.log[0])
p = snakemake.params
steps = as_checkpoints(p.checkpoints)
keys = [(s.label, c) for s in steps for c in p.corpora]
paths = snakemake.input.datasets
datasets = {k: read_dataset(path) for k, path in zip(keys, paths, strict=True)}
gathered = with_integrity(
    gather(datasets, steps, p.corpora), read_dataset(snakemake.input.integrity)
)
write_dataset(with_model(gathered, p.model), snakemake.output[0])
