"""Snakemake adapter: where anisotropy comes from, one model over training (rogue dimensions,
massive activations, train-frequency buckets), from its gathered datasets."""

from pathlib import Path

from repgeom.io import read_dataset
from repgeom.plots import origins as O
from repgeom.plots.common import save_figure
from repgeom.provenance import job_provenance
from repgeom.runtime import log_to

log_to(snakemake.log[0])
out, title = snakemake.output, snakemake.params.model
dimensions = read_dataset(snakemake.input.dimensions)
frequency = read_dataset(snakemake.input.frequency)
figures = {
    "rogue_share": lambda: O.rogue_share_by_step(dimensions, title=title),
    "massive_ratio": lambda: O.massive_ratio_by_step(dimensions, title=title),
    "frequency_last": lambda: O.frequency_at_step(frequency, title=title),
    "frequency_by_step": lambda: O.frequency_by_step(frequency, title=title),
}
pdfs = {Path(pdf).parent.name: pdf for pdf in out.pdf}
meta = job_provenance(snakemake)
for name, draw in figures.items():
    save_figure(draw(), out[name], pdfs[name], meta=meta)
