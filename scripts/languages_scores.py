"""Snakemake adapter: correlation of per-language scores with the mean ID (table + scatters)."""

import csv
import io

from repgeom.io import read_dataset, write_text
from repgeom.languages.datasets import correlation_row, latex_table, scored_mean_id
from repgeom.languages.plots import score_correlation_scatter
from repgeom.languages.readers import read_scores
from repgeom.plots.common import save_figure
from repgeom.provenance import job_provenance
from repgeom.runtime import log_to

log_to(snakemake.log[0])
p = snakemake.params
scores = read_scores(snakemake.input.scores)
meta = job_provenance(snakemake)
rows = []
items = zip(
    p.checkpoints,
    snakemake.input.datasets,
    snakemake.output.scatter,
    snakemake.output.pdf,
    strict=True,
)
for (model, step), path, png, pdf in items:
    ds = read_dataset(path)
    rows.append(correlation_row(ds, p.groups, scores, model=model, step=step))
    mean_id, matched = scored_mean_id(ds, p.groups, scores)
    fig = score_correlation_scatter(
        mean_id, matched, xlabel="mean sentence-level ID over layers", ylabel="score"
    )
    fig.suptitle(f"{model} · {step}", fontsize=9)
    save_figure(fig, png, pdf, meta=meta)
table = io.StringIO()
writer = csv.DictWriter(table, fieldnames=list(rows[0]))
writer.writeheader()
writer.writerows(rows)
write_text(snakemake.output.csv, table.getvalue(), meta)
caption = (
    "Correlation of per-language scores with the mean sentence-level intrinsic dimension over "
    f"layers (groups: {', '.join(p.groups)}); p-values two-sided."
)
write_text(snakemake.output.tex, latex_table(rows, caption), meta)
