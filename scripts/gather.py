"""Snakemake adapter: gather one metric of one model over steps and corpora."""

from repgeom.io import read_dataset, write_dataset
from repgeom.metrics.gather import gather, with_model
from repgeom.workflow.runtime import log_to

log_to(snakemake.log[0])
p = snakemake.params
keys = [(s, c) for s in p.steps for c in p.corpora]
datasets = {k: read_dataset(path) for k, path in zip(keys, snakemake.input, strict=True)}
write_dataset(with_model(gather(datasets, p.steps, p.corpora), p.model), snakemake.output[0])
