"""Snakemake adapter: token windows of a corpus (or random tokens) for one tokenizer."""

import json

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
    splits = {
        name: T.random_windows(
            p.corpus["n_sequences"], window, len(tok), special_ids(tok), bos, p.corpus["seed"] + i
        )
        for i, name in enumerate(T.SPLITS)
    }
    attrs["corpus_sha256"] = "random"
else:
    stats = json.load(open(snakemake.input.stats))
    attrs["corpus_sha256"] = stats["sha256"]
    sep = tok.eos_token_id if tok.eos_token_id is not None else tok.sep_token_id
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    splits = {}
    for name in T.SPLITS:
        encoded = T.encode(read_documents(snakemake.input[name]), tok)
        if p.corpus["windows"] == "document":
            splits[name] = T.document_windows(encoded, window, pad, bos)
        else:
            if sep is None:
                raise ValueError("the tokenizer has no EOS or SEP token to separate documents")
            splits[name] = T.stream_windows(encoded, window, sep, bos)
        if len(splits[name].lengths) == 0:
            n = sum(len(d) + (p.corpus["windows"] != "document") for d in encoded)
            corpus, tokenizer = snakemake.wildcards.corpus, snakemake.wildcards.tokenizer
            fail(str(T.too_short(corpus, tokenizer, name, n, window, bos)))
T.write_tokens(snakemake.output[0], splits, attrs)
print({k: (len(v.lengths), v.n_tokens) for k, v in splits.items()})
