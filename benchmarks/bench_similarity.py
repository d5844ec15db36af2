"""All-pairs linear CKA (standard and debiased) vs a straightforward n × n-kernel computation.

Run by hand: OMP_NUM_THREADS=2 python benchmarks/bench_similarity.py [n_tokens] [layers] [hidden]
Default 4096 tokens, 25 layers × 1024 (float32, as a store gives them), a toy residual stream
(each layer the previous plus noise) so that the values span 0…1.

Ours: ``cka_matrices`` (both forms from one set of products, the route chosen by shape), and the
same forced onto the other route. Straightforward, per pair of layers: both float64 kernels
K = XXᵀ, L = YYᵀ; K_c = HKH, L_c = HLH with the centring matrix H (two n × n products each);
CKA = tr(K_cL_c)/√(tr(K_cK_c)·tr(L_cL_c)), each trace of a product of symmetric matrices taken
as the sum of the elementwise product; debiased from K̃, L̃ (diagonals zeroed) by Song et al.'s
formula. That costs about 4n³ + 2n²d multiply-adds per pair, so it is timed on a few pairs and
extrapolated to all L(L−1)/2 pairs (said so in the output).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from repgeom.metrics.similarity import choose_route, cka_matrices

NAIVE_PAIRS = ((0, 1), (0, -1), (-2, -1))


def naive_pair(x: np.ndarray, y: np.ndarray, h: np.ndarray) -> tuple[float, float]:
    """Standard and debiased CKA of one pair through the n × n kernels."""
    n = len(x)
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    k, lk = x64 @ x64.T, y64 @ y64.T
    kc, lc = h @ k @ h, h @ lk @ h
    standard = np.sum(kc * lc) / np.sqrt(np.sum(kc * kc) * np.sum(lc * lc))
    np.fill_diagonal(k, 0.0)
    np.fill_diagonal(lk, 0.0)

    def hsic_u(a: np.ndarray, b: np.ndarray) -> float:
        return (
            np.sum(a * b)
            + a.sum() * b.sum() / ((n - 1) * (n - 2))
            - 2 / (n - 2) * (a.sum(axis=1) @ b.sum(axis=1))
        ) / (n * (n - 3))

    debiased = hsic_u(k, lk) / np.sqrt(hsic_u(k, k) * hsic_u(lk, lk))
    return float(standard), float(debiased)


def timed(fn, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main(n: int = 4096, n_layers: int = 25, d: int = 1024) -> None:
    rng = np.random.default_rng(0)
    scale = np.geomspace(3.0, 0.3, d).astype(np.float32)
    layers = [rng.standard_normal((n, d), dtype=np.float32) * scale]
    for _ in range(n_layers - 1):
        layers.append(layers[-1] + 0.5 * rng.standard_normal((n, d), dtype=np.float32) * scale)
    route = choose_route(n, [d] * n_layers)
    other = "feature" if route == "gram" else "gram"
    print(f"n={n} tokens, {n_layers} layers × {d} (float32); route chosen: {route}")

    (standard, debiased), t_ours, c_ours = timed(cka_matrices, layers)
    print(f"ours, both forms, all pairs ({route} route): {t_ours:8.2f} s wall, {c_ours:8.2f} s CPU")
    (standard_o, debiased_o), t_other, c_other = timed(cka_matrices, layers, route=other)
    print(
        f"ours forced onto the {other} route:          {t_other:8.2f} s wall, {c_other:8.2f} s CPU"
    )
    print(
        f"  routes agree to {max(np.abs(standard - standard_o).max(), np.abs(debiased - debiased_o).max()):.1e}"
    )

    h = np.eye(n) - 1.0 / n
    pairs = [(i % n_layers, j % n_layers) for i, j in NAIVE_PAIRS]
    wall, cpu = time.perf_counter(), time.process_time()
    worst = 0.0
    for i, j in pairs:
        s_ref, d_ref = naive_pair(layers[i], layers[j], h)
        worst = max(worst, abs(s_ref - standard[i, j]), abs(d_ref - debiased[i, j]))
        print(
            f"  pair ({i:2d}, {j:2d}): CKA {s_ref:.12f} (ours {standard[i, j]:.12f}), "
            f"debiased {d_ref:.12f} (ours {debiased[i, j]:.12f})"
        )
    per_pair = (time.perf_counter() - wall) / len(pairs)
    per_pair_cpu = (time.process_time() - cpu) / len(pairs)
    total = n_layers * (n_layers - 1) // 2
    print(
        f"straightforward n × n kernels: {per_pair:.2f} s wall ({per_pair_cpu:.2f} s CPU) per pair, "
        f"timed on {len(pairs)} pairs and EXTRAPOLATED to all {total} pairs: "
        f"{per_pair * total:.0f} s wall ({per_pair_cpu * total:.0f} s CPU)"
    )
    print(
        f"ratio straightforward / ours: {per_pair * total / t_ours:.0f}× wall, "
        f"{per_pair_cpu * total / c_ours:.0f}× CPU; the values agree to {worst:.1e}"
    )
    print(
        "standard CKA, adjacent layers: "
        f"{np.diag(standard, 1).min():.3f}…{np.diag(standard, 1).max():.3f}; "
        f"first vs last {standard[0, -1]:.3f} (debiased {debiased[0, -1]:.3f})"
    )


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
