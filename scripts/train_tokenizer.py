"""Snakemake adapter: train a byte-level BPE tokenizer on a corpus's train split."""

from repgeom.data.corpus import read_documents
from repgeom.data.tokenization import train_bpe
from repgeom.io import atomic_path
from repgeom.runtime import log_to

log_to(snakemake.log[0])
cfg = snakemake.params.tokenizer
tok = train_bpe(read_documents(snakemake.input.train), cfg["vocab_size"], cfg["min_frequency"])
with atomic_path(snakemake.output[0]) as tmp:
    tok.save_pretrained(tmp)
print(f"vocabulary of {len(tok)} tokens")
