"""TwoNN on 20000 × 768: repgeom vs scikit-dimension's TwoNN vs a per-point loop.

Run by hand (needs the bench extra: pip install -e ".[bench]"):
    python benchmarks/bench_twonn.py [n] [d]
Targets (issue 3): ≥ 4× faster than skdim.id.TwoNN with the same value (≤ 1e-6 relative, both
discarding 10%), ≥ 50× faster than a per-point loop in the style of LLM-Microscope (each point's
distances to all others computed and sorted one point at a time); the loop is timed on a
subsample and scaled linearly in n (its cost is n × O(n·d)). The faiss-cpu backend is timed
too: it is why the default neighbour search is torch's.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from repgeom.metrics.intrinsic import twonn, twonn_from_ratios


def per_point_loop(x: np.ndarray, n_time: int) -> tuple[float, float]:
    """Seconds for n_time points of a per-point loop, and its estimate on those points' μ."""
    x = x - x.mean(0)
    mu = []
    t = time.perf_counter()
    for i in range(n_time):
        d = np.sqrt(((x - x[i]) ** 2).sum(axis=1))
        d[i] = np.inf
        r = np.sort(d)[:2]
        mu.append(r[1] / r[0])
    return time.perf_counter() - t, twonn_from_ratios(np.array(mu))


def main(n: int = 20_000, d: int = 768) -> None:
    import skdim

    rng = np.random.default_rng(0)
    latent = rng.normal(size=(n, 12))
    x = (np.tanh(latent @ rng.normal(size=(12, d))) + 0.01 * rng.normal(size=(n, d))).astype(
        np.float32
    )
    t = time.perf_counter()
    ours = twonn(x, discard=0.1).value
    t_ours = time.perf_counter() - t
    t = time.perf_counter()
    via_faiss = twonn(x, discard=0.1, backend="faiss").value
    t_faiss = time.perf_counter() - t
    t = time.perf_counter()
    ref = skdim.id.TwoNN(discard_fraction=0.1).fit(x.astype(np.float64)).dimension_
    t_skdim = time.perf_counter() - t
    n_loop = 500
    t_loop, _ = per_point_loop(x, n_loop)
    t_loop_full = t_loop * n / n_loop
    print(f"n={n} d={d} scikit-dimension {skdim.__version__}")
    print(f"repgeom twonn:        {t_ours:8.2f} s   d = {ours:.8f}")
    print(
        f"skdim TwoNN:          {t_skdim:8.2f} s   d = {ref:.8f}   speed-up {t_skdim / t_ours:.1f}x"
    )
    print(f"repgeom, faiss-cpu:   {t_faiss:8.2f} s   d = {via_faiss:.8f}")
    print(f"relative difference:  {abs(ours - ref) / ref:.2e}  (target ≤ 1e-6)")
    print(
        f"per-point loop:       {t_loop_full:8.2f} s (timed on {n_loop} points, scaled)"
        f"   speed-up {t_loop_full / t_ours:.0f}x"
    )


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
