"""Streaming anisotropy over a Zarr store vs one in-memory float64 Gram + eigvalsh (and SVD).

Run by hand: python benchmarks/bench_anisotropy.py [n_tokens] [hidden]
Target (issue 2): streaming ≤ 2× the in-memory Gram route on 100k × 768.
"""

from __future__ import annotations

import sys
import tempfile
import time

import numpy as np
import zarr

from repgeom.activations.store import chunk_rows
from repgeom.metrics.anisotropy import anisotropy_from_eigvals
from repgeom.metrics.moments import Moments


def main(n: int = 100_000, d: int = 768) -> None:
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(n, d)) * np.linspace(0.5, 3, d)).astype(np.float16)
    with tempfile.TemporaryDirectory() as tmp:
        arr = zarr.create_array(
            store=f"{tmp}/a.zarr",
            shape=x.shape,
            dtype=x.dtype,
            chunks=(chunk_rows(d, 2), d),
            compressors=None,
        )
        arr[:] = x
        t = time.perf_counter()
        acc = Moments(d)
        for start in range(0, n, 65536):
            acc.update(np.asarray(arr[start : start + 65536], dtype=np.float32))
        a_stream = anisotropy_from_eigvals(acc.eigvalsh())
        t_stream = time.perf_counter() - t
    t = time.perf_counter()
    x64 = x.astype(np.float64)
    x64 -= x64.mean(0)
    a_gram = anisotropy_from_eigvals(np.linalg.eigvalsh(x64.T @ x64))
    t_gram = time.perf_counter() - t
    print(f"n={n} d={d}")
    print(f"streaming from Zarr (float16 store): {t_stream:.2f} s  anisotropy={a_stream:.12f}")
    print(f"in-memory float64 Gram + eigvalsh:   {t_gram:.2f} s  anisotropy={a_gram:.12f}")
    print(f"ratio streaming / in-memory: {t_stream / t_gram:.2f}  (target ≤ 2)")
    print(f"relative difference: {abs(a_stream - a_gram) / a_gram:.2e}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
