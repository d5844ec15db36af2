"""Snakemake adapter: the weights figure of one model."""

from repgeom.io import read_dataset
from repgeom.plots.common import save_figure
from repgeom.plots.weights import weights_figure
from repgeom.provenance import job_provenance
from repgeom.runtime import log_to

log_to(snakemake.log[0])
fig = weights_figure(read_dataset(snakemake.input[0]), title=snakemake.params.model)
save_figure(fig, snakemake.output.png, snakemake.output.pdf, meta=job_provenance(snakemake))
