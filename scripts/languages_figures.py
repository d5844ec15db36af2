"""Snakemake adapter: the languages study's figures of one checkpoint."""

from pathlib import Path

from repgeom.io import read_dataset
from repgeom.languages.plots import checkpoint_figures
from repgeom.plots.common import save_figure
from repgeom.provenance import job_provenance
from repgeom.runtime import log_to

log_to(snakemake.log[0])
p = snakemake.params
ds = read_dataset(snakemake.input.languages)
boot = read_dataset(snakemake.input.grammaticality[0]) if p.pairs else None
figures = checkpoint_figures(ds, boot, p.groups, p.pairs, p.title)
meta = job_provenance(snakemake)
pdfs = {Path(f).stem: f for f in snakemake.output.pdf}
for kind in ("id_anisotropy", "id_by_scale", "heatmaps", "divergence", "scripts", "grammaticality"):
    for png in snakemake.output[kind]:
        stem = Path(png).stem
        save_figure(figures.pop(stem)(), png, pdfs[stem], meta=meta)
if figures:
    raise RuntimeError(f"figures made but not declared as outputs: {sorted(figures)}")
