"""Snakemake adapter: the figures and tables of the softmax-bottleneck study, from datasets."""

from repgeom.bottleneck import plots as B
from repgeom.io import read_dataset
from repgeom.plots.common import StemFiles
from repgeom.provenance import job_provenance
from repgeom.runtime import log_to

log_to(snakemake.log[0])
p = snakemake.params
inp, out = snakemake.input, snakemake.output
files = StemFiles(out.pdf, out.tex, job_provenance(snakemake))
if p.models:
    losses = {m: read_dataset(f) for m, f in zip(p.models, inp.eval_loss, strict=True)}
    fig, table = B.saturation_figure(losses)
    files.figure(fig, out.eval_loss[0])
    files.table(out.best_vs_final[0], table)
    panels = {}
    spectra = zip(p.models, inp.spectrum, inp.cosine, out.spectrum, strict=True)
    for m, spectrum, cosine, png in spectra:
        ds = read_dataset(spectrum)
        files.figure(
            B.singular_spectrum_over_training(ds, title=f"LM-head singular values · {m}"), png
        )
        panels[m] = B.entropy_panel(ds, read_dataset(cosine), losses[m], p.corpus)
    title = f"eval corpus: {p.corpus}"
    files.figure(B.entropy_cosine_loss_vs_step(panels, title=title), out.entropy[0])
if p.heads:
    heads = {label: read_dataset(f) for label, f in zip(p.heads, inp.heads, strict=True)}
    files.figure(B.perplexity_vs_rank(heads, title="rank-restricted heads"), out.heads[0])
if p.pairs:
    werrors = {tuple(key): read_dataset(f) for key, f in zip(p.pairs, inp.ngram, strict=True)}
    fig, table = B.werror_figure(werrors, p.thresholds)
    files.figure(fig, out.ngram[0])
    files.table(out.ngram_thresholds[0], table)
