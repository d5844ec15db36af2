"""LLM-Microscope's TwoNN under both conventions of metrics.geometry.conventions.twonn_microscope
on a store of a finished run, next to the llm-microscope 0.0.7 package on the same rows (the
first ID subsample of each token set, as the geometry job draws it).

    python benchmarks/microscope_default_run.py STORE.zarr INTRINSIC_DIMENSION.nc
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import xarray as xr
from test_conventions import llm_microscope_id

from repgeom.activations.store import ActivationStore
from repgeom.metrics.intrinsic import twonn_microscope_from_ratios, twonn_microscope_llm
from repgeom.metrics.neighbors import neighbours
from repgeom.sampling import seeded_subsample

store = ActivationStore(sys.argv[1])
ref = llm_microscope_id()
ids = xr.open_dataset(sys.argv[2])
n_id = int(np.asarray(ids.id_sample_used.values).ravel()[0])
print("id_sample", n_id, "tokens", store.n_tokens)
for positions, drop in (("all", False), ("no_first", True)):
    pool = np.arange(store.n_tokens)
    if drop:
        pool = pool[np.asarray(store.position) != 0]
    sample = seeded_subsample(pool, n_id, 0, 0)
    for layer in store.layers:
        x = store.read(layer, sample)
        nb = neighbours(x, lambda n: (1, 2))
        ours = twonn_microscope_from_ratios(nb.ratios(1, 2), 0.2)
        llm = twonn_microscope_llm(x, 0.2)
        r = ref(x)
        stored = float(ids.twonn_microscope.sel(positions=positions, layer=layer, repeat=0))
        print(
            f"{positions:8s} layer {layer:2d} dups {nb.n_duplicates:4d} repgeom {ours:7.3f} (stored {stored:7.3f}) llm_microscope {llm:8.3f} package {r:8.3f}"
        )
