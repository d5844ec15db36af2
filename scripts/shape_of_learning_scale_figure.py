"""Snakemake adapter: GRIDE intrinsic dimension against scale, per layer, of one model."""

from repgeom.io import read_dataset
from repgeom.plots.common import save_figure
from repgeom.provenance import job_provenance
from repgeom.runtime import log_to
from repgeom.shape_of_learning import plots

log_to(snakemake.log[0])
fig = plots.by_scale(read_dataset(snakemake.input[0]), snakemake.params.corpus)
save_figure(fig, snakemake.output.png, snakemake.output.pdf, meta=job_provenance(snakemake))
