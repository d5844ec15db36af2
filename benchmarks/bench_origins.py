"""The geometry job of one store with and without where its anisotropy comes from (rogue
dimensions, massive activations, train-frequency buckets), options of config/config.yaml.

Run by hand, one thread as the job runs (threads: 1; Snakemake sets these for it):
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
    python benchmarks/bench_origins.py STORE.zarr TOKENS.zarr [rounds]
e.g. results/activations/decoder/step1024/python_docs.zarr results/tokens/bpe/python_docs.zarr
Target (issue 31): the new part ≤ 0.5 × the geometry job of the same store.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from repgeom.activations.store import ActivationStore
from repgeom.metrics.dimensions import DimensionOptions
from repgeom.metrics.frequency import FrequencyOptions, split_counts
from repgeom.metrics.geometry import GeometryOptions, geometry_datasets
from repgeom.metrics.origins import Origins
from repgeom.workflow.config import load_yaml, options

CONFIG = Path(__file__).resolve().parents[1] / "config" / "config.yaml"


def _round(values: list[float]) -> list[float]:
    return [round(v, 2) for v in values]


def main(store_path: str, tokens_path: str, rounds: int = 3) -> None:
    metrics = load_yaml(CONFIG).get("metrics", {})
    geometry = options(GeometryOptions, "metrics.geometry", metrics.get("geometry"))
    store = ActivationStore(store_path)
    without, with_origins = [], []
    for _ in range(rounds):  # alternating, best of each; CPU time (the machine may be shared)
        t = time.process_time()
        geometry_datasets(store, geometry)
        without.append(time.process_time() - t)
        t = time.process_time()
        origins = Origins(
            options(DimensionOptions, "metrics.dimensions", metrics.get("dimensions")),
            options(FrequencyOptions, "metrics.frequency", metrics.get("frequency")),
            split_counts(tokens_path, "train"),
        )
        geometry_datasets(store, geometry, origins)
        with_origins.append(time.process_time() - t)
    a, b = min(without), min(with_origins)
    print(f"{store_path}: {store.n_tokens} tokens × {store.hidden_size}, layers {store.layers}")
    print(f"geometry job, computation only: {a:6.2f} s CPU (rounds {_round(without)})")
    print(f"with dimensions and frequency:  {b:6.2f} s CPU (rounds {_round(with_origins)})")
    print(f"new part {b - a:.2f} s = {(b - a) / a:.2f} × the geometry computation (target ≤ 0.5)")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(int(a) for a in sys.argv[3:4]))
