"""Snakemake adapter: anisotropy-by-layer figure of one model."""

from repgeom.io import read_dataset
from repgeom.plots.anisotropy import anisotropy_by_layer
from repgeom.plots.common import save_figure
from repgeom.runtime import log_to

log_to(snakemake.log[0])
fig = anisotropy_by_layer(read_dataset(snakemake.input[0]), title=snakemake.params.model)
save_figure(fig, snakemake.output.png, snakemake.output.pdf)
