"""Snakemake adapter: one Shape-of-Learning figure from the gathered metric datasets."""

from repgeom.io import read_dataset
from repgeom.plots.common import save_figure
from repgeom.provenance import job_provenance
from repgeom.runtime import log_to
from repgeom.shape_of_learning import plots as sol

log_to(snakemake.log[0])
p = snakemake.params
datasets = {m: read_dataset(path) for m, path in zip(p.models, snakemake.input, strict=True)}
if p.kind == "by_step":
    fig = sol.by_step(datasets, p.variable)
elif p.gride:  # GRIDE at the reported scale next to TwoNN, disagreeing layers ringed
    companion = ("gride_at_scale", "gride_at_scale_error")
    fig = sol.by_layer(datasets, p.variable, companion=companion, flag="twonn_gride_disagree")
else:
    fig = sol.by_layer(datasets, p.variable)
save_figure(fig, snakemake.output.png, snakemake.output.pdf, meta=job_provenance(snakemake))
