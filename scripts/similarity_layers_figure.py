"""Snakemake adapter: CKA heatmaps (layer × layer) of one model and corpus at a few
checkpoints and the last."""

from repgeom.io import read_dataset
from repgeom.plots.common import save_figure
from repgeom.plots.similarity import cka_heatmaps
from repgeom.provenance import job_provenance
from repgeom.runtime import log_to

log_to(snakemake.log[0])
p = snakemake.params
fig = cka_heatmaps(read_dataset(snakemake.input[0]), p.corpus, title=p.model)
save_figure(fig, snakemake.output.png, snakemake.output.pdf, meta=job_provenance(snakemake))
