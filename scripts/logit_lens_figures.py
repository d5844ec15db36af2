"""Snakemake adapter: the logit-lens figures and table of every model."""

from repgeom.io import read_dataset
from repgeom.logit_lens import plots
from repgeom.plots.common import save_figure, write_table
from repgeom.provenance import job_provenance
from repgeom.runtime import log_to

log_to(snakemake.log[0])
p, out = snakemake.params, snakemake.output
datasets = {m: read_dataset(path) for m, path in zip(p.models, snakemake.input, strict=True)}
meta = job_provenance(snakemake)
save_figure(plots.by_layer(datasets, "logit_lens_loss"), out.loss_png, out.loss_pdf, meta=meta)
agreement = plots.by_layer(datasets, "logit_lens_agreement")
save_figure(agreement, out.agreement_png, out.agreement_pdf, meta=meta)
write_table(plots.table_rows(datasets), out.csv, out.tex, meta, n_labels=5)
