"""Snakemake adapter: train one Birth-of-a-Transformer variant and write its datasets."""

from repgeom.birth.config import BirthConfig
from repgeom.birth.train import train_variant
from repgeom.data.corpus import read_documents
from repgeom.io import write_dataset
from repgeom.options import build
from repgeom.provenance import provenance
from repgeom.runtime import log_to, set_threads

log_to(snakemake.log[0])
set_threads(snakemake.threads)
p = snakemake.params
cfg = build(BirthConfig, p.variant, where=f"birth.variants.{snakemake.wildcards.variant}")
metrics, attention = train_variant(read_documents(snakemake.input.train), cfg, p.device)
for ds, path in ((metrics, snakemake.output.metrics), (attention, snakemake.output.attention)):
    ds.attrs.update(provenance(p.variant, device=p.device))
    write_dataset(ds, path)
