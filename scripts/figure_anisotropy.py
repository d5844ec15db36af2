"""Snakemake adapter: anisotropy-by-layer figure of one model."""

from repgeom.io import read_dataset
from repgeom.plots.anisotropy import anisotropy_by_layer
from repgeom.plots.common import save_figure
from repgeom.provenance import job_provenance
from repgeom.runtime import log_to

log_to(snakemake.log[0])
ds = read_dataset(snakemake.input[0])
if "positions" in ds.dims:
    ds = ds.isel(positions=0)  # the first configured token set (all positions by default)
fig = anisotropy_by_layer(ds, title=f"{snakemake.params.model} · {ds.positions.item()}")
save_figure(fig, snakemake.output.png, snakemake.output.pdf, meta=job_provenance(snakemake))
