"""Snakemake adapter: the languages study of one checkpoint (per-language and grammaticality)."""

from repgeom.activations.store import ActivationStore
from repgeom.io import write_dataset
from repgeom.languages.datasets import LanguagesOptions, checkpoint_attrs, checkpoint_datasets
from repgeom.options import build
from repgeom.provenance import provenance
from repgeom.runtime import log_to, set_threads

log_to(snakemake.log[0])
set_threads(snakemake.threads)
p = snakemake.params
options = build(LanguagesOptions, p.options, where="languages")
stores = {c: ActivationStore(path) for c, path in zip(p.corpora, snakemake.input, strict=True)}
groups = p.groups  # the language groups, then the pair sets not among them
attrs = provenance(
    {"languages": p.options, "groups": groups},
    model=p.model,
    step=p.step,
    **checkpoint_attrs(stores, groups, options),
)
ds, grammaticality = checkpoint_datasets(stores, groups, p.pairs, options, attrs)
write_dataset(ds, snakemake.output.languages)
if grammaticality is not None:
    write_dataset(grammaticality, snakemake.output.grammaticality[0])
print(ds)
