"""Snakemake adapter: CKA of each layer with the final checkpoint over training, one model."""

from repgeom.io import read_dataset
from repgeom.plots.common import save_figure
from repgeom.plots.similarity import cka_to_final_by_step
from repgeom.provenance import job_provenance
from repgeom.runtime import log_to

log_to(snakemake.log[0])
fig = cka_to_final_by_step(read_dataset(snakemake.input[0]), title=snakemake.params.model)
save_figure(fig, snakemake.output.png, snakemake.output.pdf, meta=job_provenance(snakemake))
