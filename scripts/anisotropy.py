"""Snakemake adapter: anisotropy per layer of one activation store."""

from repgeom.io import write_dataset
from repgeom.metrics.layerwise import anisotropy_dataset
from repgeom.provenance import provenance
from repgeom.runtime import log_to
from repgeom.store import ActivationStore

log_to(snakemake.log[0])
store = ActivationStore(snakemake.input[0])
ds = anisotropy_dataset(store, snakemake.params.options)
ds.attrs.update(
    provenance(
        snakemake.params.options,
        **{k: store.attrs[k] for k in ("model", "step", "corpus", "corpus_sha256", "model_source")},
    )
)
write_dataset(ds, snakemake.output[0])
