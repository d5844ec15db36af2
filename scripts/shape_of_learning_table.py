"""Snakemake adapter: one metric of every model as a CSV and a LaTeX table."""

from repgeom.io import read_dataset
from repgeom.plots.common import write_table
from repgeom.provenance import job_provenance
from repgeom.runtime import log_to
from repgeom.shape_of_learning.plots import metric_table

log_to(snakemake.log[0])
p = snakemake.params
datasets = {m: read_dataset(path) for m, path in zip(p.models, snakemake.input, strict=True)}
rows = metric_table(datasets, p.variables)
write_table(rows, snakemake.output.csv, snakemake.output.tex, job_provenance(snakemake))
