"""Snakemake adapter: download a pinned file (sha256 checked, written atomically)."""

from repgeom.workflow.download import ensure
from repgeom.workflow.runtime import log_to

log_to(snakemake.log[0])
ensure(snakemake.output[0], snakemake.params.url, snakemake.params.sha256)
