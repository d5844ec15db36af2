"""Snakemake adapter: the figures and tables of the softmax-bottleneck study, from datasets."""

from pathlib import Path

import numpy as np
import xarray as xr

from repgeom.bottleneck import plots as B
from repgeom.bottleneck.ngram_werror import werror_thresholds
from repgeom.io import read_dataset, write_text
from repgeom.plots.common import save_figure
from repgeom.provenance import job_provenance
from repgeom.runtime import log_to


def save(fig, png):
    """Save a figure as its PNG output and the PDF of the same stem."""
    save_figure(fig, png, pdfs[Path(png).stem], meta=meta)


def tables(csv_path, csv_tex):
    write_text(csv_path, csv_tex[0], meta)
    write_text(texs[Path(csv_path).stem], csv_tex[1], meta)


log_to(snakemake.log[0])
p = snakemake.params
inp, out = snakemake.input, snakemake.output
meta = job_provenance(snakemake)
pdfs = {Path(f).stem: f for f in out.pdf}
texs = {Path(f).stem: f for f in out.tex}
if p.models:
    losses = {m: read_dataset(f) for m, f in zip(p.models, inp.eval_loss, strict=True)}
    series = {
        (m, c): ds["eval_loss"].sel(corpus=c, drop=True)
        for m, ds in losses.items()
        for c in ds["corpus"].values.tolist()
        if np.isfinite(ds["eval_loss"].sel(corpus=c)).any()  # a masked LM has no eval loss
    }
    if not series:
        raise ValueError(f"no eval loss for any model of the study {p.models}: masked LMs only?")
    several = len({c for _, c in series}) > 1
    labelled = {(f"{m} · {c}" if several else m): da for (m, c), da in series.items()}
    save(B.eval_loss_vs_step(labelled, title="eval loss over training"), out.eval_loss[0])
    tables(out.best_vs_final[0], B.best_vs_final_table(series, key_names=("model", "corpus")))
    panels = {}
    for m, spectrum, cosine, png in zip(
        p.models, inp.spectrum, inp.cosine, out.spectrum, strict=True
    ):
        ds = read_dataset(spectrum)
        save(B.singular_spectrum_over_training(ds, title=f"LM-head singular values · {m}"), png)
        panels[m] = xr.merge(
            [
                ds[["singular_entropy"]],
                read_dataset(cosine)[["mean_cosine"]].sel(corpus=p.corpus, drop=True),
                losses[m][["eval_loss"]].sel(corpus=p.corpus, drop=True),
            ],
            join="outer",
            compat="override",
        )
    save(B.entropy_cosine_loss_vs_step(panels, title=f"eval corpus: {p.corpus}"), out.entropy[0])
if p.heads:
    heads = {label: read_dataset(f) for label, f in zip(p.heads, inp.heads, strict=True)}
    save(B.perplexity_vs_rank(heads, title="rank-restricted heads"), out.heads[0])
if p.pairs:
    werrors = {tuple(key): read_dataset(f) for key, f in zip(p.pairs, inp.ngram, strict=True)}
    labelled = {f"{c} × {t}": ds for (t, c), ds in werrors.items()}
    save(B.werror_vs_rank(labelled, p.thresholds, title="5-gram W-error"), out.ngram[0])
    rows = {key: werror_thresholds(ds, p.thresholds) for key, ds in werrors.items()}
    tables(out.ngram_thresholds[0], B.werror_threshold_table(rows))
