"""Snakemake adapter: linear CKA of one activation store, between its layers and with the same
layers of the model's last checkpoint (same corpus)."""

from repgeom.activations.store import ActivationStore
from repgeom.io import write_dataset
from repgeom.metrics.similarity import SimilarityOptions, similarity_dataset
from repgeom.options import build
from repgeom.provenance import provenance
from repgeom.runtime import log_to

log_to(snakemake.log[0])
p = snakemake.params
where = (
    f"similarity of model {p.model!r}, step {p.step!r}, corpus {p.corpus!r} "
    f"(against the last checkpoint {p.final_step!r})"
)
store = ActivationStore(snakemake.input.store)
final = ActivationStore(snakemake.input.final)
options = build(SimilarityOptions, p.options, where="metrics.similarity")
ds = similarity_dataset(store, final, options, where=where)
ds.attrs.update(provenance(p.options, final_step=p.final_step, **store.provenance()))
write_dataset(ds, snakemake.output[0])
