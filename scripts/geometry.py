"""Snakemake adapter: the geometry metrics of one activation store, and where its anisotropy
comes from (rogue dimensions, massive activations, train-frequency buckets)."""

from repgeom.activations.store import ActivationStore
from repgeom.io import write_dataset
from repgeom.metrics.dimensions import DimensionOptions
from repgeom.metrics.frequency import FrequencyOptions, split_counts
from repgeom.metrics.geometry import GeometryOptions, geometry_datasets
from repgeom.metrics.origins import Origins
from repgeom.options import build
from repgeom.provenance import provenance
from repgeom.runtime import log_to

log_to(snakemake.log[0])
p = snakemake.params
store = ActivationStore(snakemake.input.store)
options = build(GeometryOptions, p.options, where="metrics.geometry")
origins = Origins(
    build(DimensionOptions, p.dimensions, where="metrics.dimensions"),
    build(FrequencyOptions, p.frequency, where="metrics.frequency"),
    split_counts(snakemake.input.tokens, "train"),
)
sections = {"geometry": p.options, "dimensions": p.dimensions, "frequency": p.frequency}
for name, ds in geometry_datasets(store, options, origins).items():
    ds.attrs.update(provenance(sections, **store.provenance()))
    write_dataset(ds, snakemake.output[name])
