"""Snakemake adapter: the LM-head spectra of one model stacked over its checkpoints."""

from repgeom.bottleneck.datasets import stack_steps
from repgeom.io import read_dataset, write_dataset
from repgeom.metrics.gather import with_model
from repgeom.runtime import log_to
from repgeom.steps import as_checkpoints

log_to(snakemake.log[0])
p = snakemake.params
gathered = stack_steps(
    [read_dataset(path) for path in snakemake.input], as_checkpoints(p.checkpoints)
)
gathered.attrs["model"] = p.model
write_dataset(with_model(gathered, p.model), snakemake.output[0])
