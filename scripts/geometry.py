"""Snakemake adapter: the geometry metrics of one activation store."""

from repgeom.activations.store import ActivationStore
from repgeom.io import write_dataset
from repgeom.metrics.geometry import GeometryOptions, geometry_datasets
from repgeom.options import build
from repgeom.provenance import provenance
from repgeom.runtime import log_to

log_to(snakemake.log[0])
store = ActivationStore(snakemake.input[0])
options = build(GeometryOptions, snakemake.params.options, where="metrics.geometry")
for name, ds in geometry_datasets(store, options).items():
    ds.attrs.update(provenance(snakemake.params.options, **store.provenance()))
    write_dataset(ds, snakemake.output[name])
