"""Anisotropy family in one streaming pass vs a full torch.linalg.svd, on 100k × 768.

Run by hand: python benchmarks/bench_family.py [n] [d]
Target (issue 3): ≥ 10× faster than torch.linalg.svd at ≤ 1e-8 relative error of anisotropy.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from repgeom.metrics.family import FamilyAccumulator, anisotropy_power, effective_rank


def main(n: int = 100_000, d: int = 768) -> None:
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(n, d)) * np.linspace(0.5, 4, d)).astype(np.float32)
    t = time.perf_counter()
    acc = FamilyAccumulator.of((x[s : s + 65536] for s in range(0, n, 65536)), d)
    w = acc.moments.eigvalsh()
    anis = w[0] / w.sum()
    effective_rank(w)
    anisotropy_power(acc.moments.scatter())
    t_stream = time.perf_counter() - t
    t = time.perf_counter()
    xt = torch.from_numpy(x).double()
    s = torch.linalg.svd(xt - xt.mean(0), full_matrices=False).S.numpy()
    t_svd = time.perf_counter() - t
    ref = s[0] ** 2 / (s**2).sum()
    print(f"n={n} d={d}")
    print(f"one streaming pass (all metrics): {t_stream:7.2f} s  anisotropy={anis:.12f}")
    print(f"torch.linalg.svd (float64):       {t_svd:7.2f} s  anisotropy={ref:.12f}")
    print(
        f"speed-up {t_svd / t_stream:.1f}x (target ≥ 10), relative error {abs(anis - ref) / ref:.1e}"
    )


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
