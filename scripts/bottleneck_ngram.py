"""Snakemake adapter: W-error of the n-gram next-token matrix of a corpus's train split."""

from repgeom.bottleneck.ngram_werror import wrank_estimate
from repgeom.bottleneck.options import NgramOptions
from repgeom.data.tokens import read_tokens, tokens_attrs
from repgeom.io import write_dataset
from repgeom.options import build
from repgeom.provenance import provenance
from repgeom.runtime import log_to, memory_exit

log_to(snakemake.log[0])
p = snakemake.params
options = build(NgramOptions, p.ngram, where="bottleneck.ngram")
meta = tokens_attrs(snakemake.input.tokens)
windows = read_tokens(snakemake.input.tokens, "train", options.max_tokens)
attrs = provenance(
    {"ngram": p.ngram},
    tokenizer=p.tokenizer,
    corpus=p.corpus,
    corpus_sha256=meta["corpus_sha256"],
    split="train",
)
budget = None if p.memory_mb is None else p.memory_mb * 2**20
with memory_exit(f"config key 'bottleneck.ngram' ({p.tokenizer}, {p.corpus})"):
    ds = wrank_estimate(
        windows.ids, int(meta["vocab_size"]), options, windows.lengths, budget, attrs
    )
write_dataset(ds, snakemake.output[0])
print(ds)
