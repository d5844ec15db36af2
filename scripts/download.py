"""Snakemake adapter: download a pinned file (sha256 checked, written atomically)."""

from repgeom.runtime import log_to
from repgeom.workflow.download import ensure

log_to(snakemake.log[0])
ensure(snakemake.output[0], snakemake.params.url, snakemake.params.sha256)
