"""Snakemake adapter: write a corpus's train/eval documents and stats."""

from pathlib import Path

from repgeom.data import corpus as C
from repgeom.runtime import log_to

log_to(snakemake.log[0])
cfg = snakemake.params.corpus
name = snakemake.params.name
docs, attrs = C.corpus_documents(name, cfg, [Path(p) for p in snakemake.input])
out = Path(snakemake.output.stats).parent
stats = C.write_corpus(docs, out, cfg["eval_fraction"], attrs, C.corpus_origin(name, cfg))
print(f"{stats['n_documents']} documents, {stats['n_characters']} characters")
