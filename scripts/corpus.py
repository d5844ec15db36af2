"""Snakemake adapter: write a corpus's train/eval documents and stats."""

from pathlib import Path

import numpy as np

from repgeom.data import corpus as C
from repgeom.workflow.runtime import log_to

log_to(snakemake.log[0])
cfg = snakemake.params.corpus
attrs = {"name": snakemake.params.name, "kind": cfg["kind"]}
if cfg["kind"] == "python_docs":
    docs = C.python_docs(min_chars=cfg["min_chars"])
    attrs.update(C.python_docs_attrs())
else:
    paths = [Path(p) for p in snakemake.input]
    docs = C.text_documents(
        paths, cfg["split_by"], cfg["n_chunks"], cfg["chunk_chars"], cfg["seed"]
    )
    docs = [d for d in docs if len(d) >= cfg["min_chars"]]
    attrs["source_files"] = [str(p) for p in paths]
if cfg["max_documents"] and len(docs) > cfg["max_documents"]:
    rng = np.random.default_rng(cfg["seed"])
    docs = [docs[i] for i in np.sort(rng.choice(len(docs), cfg["max_documents"], replace=False))]
stats = C.write_corpus(docs, Path(snakemake.output.stats).parent, cfg["eval_fraction"], attrs)
print(f"{stats['n_documents']} documents, {stats['n_characters']} characters")
