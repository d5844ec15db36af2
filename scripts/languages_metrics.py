"""Snakemake adapter: the languages study of one checkpoint (per-language and grammaticality)."""

import json

from repgeom.activations.store import ActivationStore
from repgeom.io import write_dataset
from repgeom.languages.datasets import grammaticality_dataset, study_dataset
from repgeom.languages.estimates import IDFunction, id_estimator
from repgeom.provenance import provenance
from repgeom.runtime import log_to, set_threads

log_to(snakemake.log[0])
set_threads(snakemake.threads)
p = snakemake.params
o = p.options
stores = {c: ActivationStore(path) for c, path in zip(p.corpora, snakemake.input, strict=True)}
groups = p.groups  # the language groups, then the pair sets not among them
first = stores[p.corpora[0]]
attrs = provenance(
    {"languages": o, "groups": groups},
    model=p.model,
    step=p.step,
    model_source=first.attrs["model_source"],
    checkpoint_fingerprint=first.attrs.get("checkpoint_fingerprint", ""),
    corpus_sha256=json.dumps({c: s.attrs["corpus_sha256"] for c, s in stores.items()}),
    id_estimator=id_estimator(o["id_estimator"]),  # the registry's name (an alias resolved)
    id_sample=o["id_sample"],
    id_repeats=o["id_repeats"],
    gride_scales=o["gride_scales"],
    gride_scale=o["gride_scale"],
    data=json.dumps({g["name"]: g["description"] or g["origin"] for g in groups}),
    synthetic_groups=[g["name"] for g in groups if g["synthetic"]],
    sentence_level="mean of each sentence's non-padding tokens (BOS included when prepended)",
)
estimator = (o["id_estimator"], o["id_sample"], o["id_repeats"], o["seed"])
# the ID and GRIDE of each subsample from one neighbour search; the bootstrap needs the ID only
id_and_gride = IDFunction(*estimator, gride_scales=o["gride_scales"])
id_fn = IDFunction(*estimator)
ds = study_dataset(stores, groups, id_and_gride, o["knn_k"], o["token_knn_kl"], o["seed"], attrs)
write_dataset(ds, snakemake.output.languages)
if p.pairs:
    boot = grammaticality_dataset(stores, p.pairs, id_fn, o["n_boot"], o["seed"], o["alpha"], attrs)
    write_dataset(boot, snakemake.output.grammaticality[0])
print(ds)
