"""Snakemake adapter: one aligned corpus of the languages study (every sentence in eval)."""

from pathlib import Path

from repgeom.data.corpus import read_documents
from repgeom.languages.corpora import member_sentences, write_aligned_corpus
from repgeom.runtime import log_to

log_to(snakemake.log[0])
cfg = snakemake.params.corpus
source = read_documents(snakemake.input[0]) if cfg.get("source") else None
sentences = member_sentences(cfg, source)
keys = ("origin", "group", "member", "members", "synthetic", "description", "source")
attrs = {"name": snakemake.params.name, "kind": cfg["kind"]}
attrs.update({k: cfg[k] for k in keys if k in cfg})
attrs["input_files"] = [str(p) for p in snakemake.input]
stats = write_aligned_corpus(sentences, Path(snakemake.output.stats).parent, attrs)
print(f"{stats['n_documents']} sentences, {stats['n_characters']} characters")
