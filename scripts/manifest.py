"""Snakemake adapter: write results/manifest.tsv for every final artifact and every kept
activation store (listed chunk by chunk: an input directory is expanded to its files)."""

from repgeom.runtime import log_to
from repgeom.workflow.manifest import write_manifest

log_to(snakemake.log[0])
p = snakemake.params
rows = [(path, *p.producers[path], p.config_hash) for path in snakemake.input]
write_manifest(
    [(path, rule, cfg, code) for path, rule, code, cfg in rows],
    snakemake.output[0],
    threads=snakemake.threads,
)
