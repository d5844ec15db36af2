"""Snakemake adapter: the Birth-of-a-Transformer figures from every variant's datasets."""

from repgeom.birth import plots
from repgeom.io import read_dataset
from repgeom.plots.common import save_figure
from repgeom.provenance import job_provenance
from repgeom.runtime import log_to

log_to(snakemake.log[0])
names = snakemake.params.variants
metrics = {v: read_dataset(p) for v, p in zip(names, snakemake.input.metrics, strict=True)}
attention = {v: read_dataset(p) for v, p in zip(names, snakemake.input.attention, strict=True)}
out, meta = snakemake.output, job_provenance(snakemake)
figures = {
    "training_curves": plots.training_curves(metrics),
    "memory_probes": plots.memory_probe_curves(metrics),
    "attention_maps": plots.attention_maps(attention),
}
for name, fig in figures.items():
    save_figure(fig, out[f"{name}_png"], out[f"{name}_pdf"], meta=meta)
