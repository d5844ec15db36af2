"""Snakemake adapter: α-ReQ of each layer over training, one model, from its anisotropy dataset."""

from repgeom.io import read_dataset
from repgeom.plots.common import save_figure
from repgeom.plots.similarity import alpha_req_by_step
from repgeom.provenance import job_provenance
from repgeom.runtime import log_to

log_to(snakemake.log[0])
fig = alpha_req_by_step(read_dataset(snakemake.input[0]), title=snakemake.params.model)
save_figure(fig, snakemake.output.png, snakemake.output.pdf, meta=job_provenance(snakemake))
