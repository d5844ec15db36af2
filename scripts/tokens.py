"""Snakemake adapter: token windows of a corpus (or random tokens) for one tokenizer."""

import json
from pathlib import Path

from repgeom.data import tokens as T
from repgeom.data.corpus import read_documents
from repgeom.data.tokenization import load_tokenizer, special_ids
from repgeom.provenance import provenance
from repgeom.runtime import fail, log_to

log_to(snakemake.log[0])
p = snakemake.params
tok = load_tokenizer(p.source["path"], p.source["revision"])
window = p.tokenizer["window"]
bos = T.bos_id(tok) if p.tokenizer["bos"] == "prepend" else None
attrs = provenance(
    {"tokenizer": p.tokenizer, "corpus": p.corpus},
    tokenizer_source=json.dumps(p.source),
    vocab_size=len(tok),
    window=window,
    bos=p.tokenizer["bos"],
)
if p.corpus["kind"] == "random_tokens":
    n, seed = p.corpus["n_sequences"], p.corpus["seed"]
    splits = T.random_splits(n, window, len(tok), special_ids(tok), bos, seed)
    attrs["corpus_sha256"] = "random"
else:
    attrs["corpus_sha256"] = json.loads(Path(snakemake.input.stats).read_text())["sha256"]
    names = (snakemake.wildcards.corpus, snakemake.wildcards.tokenizer)
    document = p.corpus["windows"] == "document"
    try:
        splits = T.corpus_splits(
            tok, lambda split: read_documents(snakemake.input[split]), window, bos, document, names
        )
    except T.ShortCorpusError as err:
        fail(str(err))
T.write_tokens(snakemake.output[0], splits, attrs)
print({k: (len(v.lengths), v.n_tokens) for k, v in splits.items()})
