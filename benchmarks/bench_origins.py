"""The geometry job of one store with and without where its anisotropy comes from (rogue
dimensions, massive activations, train-frequency buckets), side by side in one process.

Run by hand, one thread as the job runs (threads: 1; Snakemake sets these for it):
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
    python benchmarks/bench_origins.py STORE.zarr TOKENS.zarr [rounds] [--config CONFIG]
e.g. results/activations/decoder/step1024/python_docs.zarr results/tokens/bpe/python_docs.zarr;
or on a store of random activations at a paper's shape, written to a temporary directory:
    python benchmarks/bench_origins.py --synthetic [tokens] [hidden] [layers] [rounds] \
        [--config CONFIG]
(defaults 32768 tokens, as config/paper/shape_of_learning.yaml extracts, × 768 dims × 13
layers: GPT-2 small / Pythia-160m, the embeddings and 12 blocks; 2 rounds; token ids drawn
from a Zipf law over a 50 304-token vocabulary, train counts from 10⁶ more draws).
The options are the ``metrics`` section of CONFIG (default config/config.yaml).
Target (issue 31): the new part ≤ 0.5 × the geometry job of the same store.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from repgeom.activations.source import LayerSource
from repgeom.activations.store import ActivationStore, StoreWriter
from repgeom.metrics.dimensions import DimensionOptions
from repgeom.metrics.frequency import FrequencyOptions, split_counts, token_counts
from repgeom.metrics.geometry import GeometryOptions, geometry_datasets
from repgeom.metrics.origins import Origins
from repgeom.workflow.config import load_yaml, options

CONFIG = Path(__file__).resolve().parents[1] / "config" / "config.yaml"
VOCAB = 50_304
WINDOW = 512


def _round(values: list[float]) -> list[float]:
    return [round(v, 2) for v in values]


def compare(
    store: LayerSource, counts: Callable[[], np.ndarray], config: Path, rounds: int
) -> None:
    """CPU time of the geometry job's computation alone and with the origins (``counts()``, the
    train counts, included), rounds alternating, best of each (CPU time: the machine may be
    shared)."""
    metrics = load_yaml(config).get("metrics", {})
    geometry = options(GeometryOptions, "metrics.geometry", metrics.get("geometry"))
    origins = Origins(
        options(DimensionOptions, "metrics.dimensions", metrics.get("dimensions")),
        options(FrequencyOptions, "metrics.frequency", metrics.get("frequency")),
        counts(),
    )
    first = dataclasses.replace(geometry, layers=[list(store.layers)[-1]])
    geometry_datasets(store, first, origins)  # warm-up: imports and first calls, untimed
    without, with_origins = [], []
    for _ in range(rounds):
        t = time.process_time()
        geometry_datasets(store, geometry)
        without.append(time.process_time() - t)
        t = time.process_time()
        origins = Origins(
            options(DimensionOptions, "metrics.dimensions", metrics.get("dimensions")),
            options(FrequencyOptions, "metrics.frequency", metrics.get("frequency")),
            counts(),
        )
        geometry_datasets(store, geometry, origins)
        with_origins.append(time.process_time() - t)
    a, b = min(without), min(with_origins)
    print(f"{store.n_tokens} tokens × {store.hidden_size}, layers {list(store.layers)}")
    print(f"options: metrics of {config}, positions {list(geometry.positions)}")
    print(f"geometry job, computation only: {a:6.2f} s CPU (rounds {_round(without)})")
    print(f"with dimensions and frequency:  {b:6.2f} s CPU (rounds {_round(with_origins)})")
    print(f"new part {b - a:.2f} s = {(b - a) / a:.2f} × the geometry computation (target ≤ 0.5)")


def zipf_ids(rng: np.random.Generator, n: int, vocab: int = VOCAB) -> np.ndarray:
    """n token ids with P(rank r) ∝ 1/r (Zipf's law), the ranks shuffled over the ids."""
    p = 1.0 / np.arange(1, vocab + 1)
    return rng.permutation(vocab)[rng.choice(vocab, size=n, p=p / p.sum())]


def synthetic_store(path: Path, tokens: int, hidden: int, layers: int) -> np.ndarray:
    """A store of random activations (a per-dimension offset and scale, so the tokens are
    anisotropic; fresh values at every layer) with Zipfian token ids; returns train counts
    drawn from the same law."""
    rng = np.random.default_rng(0)
    index = {
        "token_id": zipf_ids(rng, tokens),
        "sequence": np.arange(tokens) // WINDOW,
        "position": np.arange(tokens) % WINDOW,
    }
    n_seq = int(index["sequence"].max()) + 1
    offset = rng.normal(scale=0.5, size=hidden)
    scale = rng.uniform(0.5, 2.0, size=hidden)
    with StoreWriter(path, range(layers), hidden, index, np.bincount(index["sequence"])) as store:
        for i in range(layers):
            for start in range(0, tokens, 8192):
                n = min(8192, tokens - start)
                rows = (rng.normal(size=(n, hidden)) * scale + offset).astype(np.float16)
                store.tokens[i].append(rows)
            store.means[i].append(np.zeros((n_seq, hidden), np.float32))
        store.close({})
    return token_counts(zipf_ids(rng, 1_000_000), VOCAB)


def main(argv: list[str]) -> None:
    config = CONFIG
    if "--config" in argv:
        at = argv.index("--config")
        config = Path(argv[at + 1])
        argv = argv[:at] + argv[at + 2 :]
    if argv and argv[0] == "--synthetic":
        tokens, hidden, layers, rounds = [int(a) for a in argv[1:5]] + [32768, 768, 13, 2][
            len(argv[1:5]) :
        ]
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            counts = synthetic_store(Path(tmp) / "s.zarr", tokens, hidden, layers)
            print(f"random store written in {time.perf_counter() - t:.1f} s")
            compare(ActivationStore(Path(tmp) / "s.zarr"), lambda: counts, config, rounds)
        return
    store_path, tokens_path, *rest = argv
    print(store_path)
    rounds = int(rest[0]) if rest else 3
    compare(ActivationStore(store_path), lambda: split_counts(tokens_path, "train"), config, rounds)


if __name__ == "__main__":
    main(sys.argv[1:])
