"""Snakemake adapter: correlation of per-language scores with the mean ID (table + scatters)."""

from repgeom.io import read_dataset, write_text
from repgeom.languages.datasets import correlation_row, correlation_tables
from repgeom.languages.plots import checkpoint_score_scatter
from repgeom.languages.readers import read_scores
from repgeom.plots.common import save_figure
from repgeom.provenance import job_provenance
from repgeom.runtime import log_to

log_to(snakemake.log[0])
p = snakemake.params
scores = read_scores(snakemake.input.scores)
meta = job_provenance(snakemake)
rows = []
out = snakemake.output
items = zip(p.checkpoints, snakemake.input.datasets, out.scatter, out.pdf, strict=True)
for (model, step), path, png, pdf in items:
    ds = read_dataset(path)
    rows.append(correlation_row(ds, p.groups, scores, model=model, step=step))
    fig = checkpoint_score_scatter(ds, p.groups, scores, f"{model} · {step}")
    save_figure(fig, png, pdf, meta=meta)
csv_text, tex = correlation_tables(rows, p.groups)
write_text(out.csv, csv_text, meta)
write_text(out.tex, tex, meta)
