"""Writes tests/data/gride_dadapy.npz: DADApy's GRIDE on a few fixed point sets.

Runs in the DADApy environment, never in repgeom's (DADApy 0.3.4 pins numpy<2 and jax):
    bash benchmarks/dadapy_env.sh
    benchmarks/.dadapy-venv/bin/python benchmarks/make_gride_fixture.py
Each case stores its points (float32, drawn here from fixed seeds; both sides compute on their
float64 values) and DADApy's ``Data(points).return_id_scaling_gride(range_max)`` with its
defaults d0 = 0.001, d1 = 1000, eps = 1e-7: ids, errors and scales (mean r_n1, r_n2).
tests/test_gride.py compares repgeom's ``gride`` with them.
"""

from __future__ import annotations

import importlib.metadata as md
import json
from pathlib import Path

import numpy as np
from dadapy import Data

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "gride_dadapy.npz"


def cube(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """Uniform in the unit d-cube."""
    return rng.uniform(size=(n, d))


def sphere(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """Uniform on the unit d-sphere in d + 1 dimensions."""
    g = rng.normal(size=(n, d + 1))
    return g / np.linalg.norm(g, axis=1, keepdims=True)


def clumps(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """Gaussian in d dimensions plus n/50 near-copies (offsets of 1e-4): r2/r1 outliers GRIDE leaves out."""
    g = rng.normal(size=(n, d))
    near = g[: n // 50] + 1e-4 * rng.normal(size=(n // 50, d))
    return np.vstack([g, near])


def grid(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """The integer grid of side n^(1/d) in d dims, shuffled: equidistant neighbours, r2n = rn."""
    side = round(n ** (1 / d))
    axes = np.meshgrid(*[np.arange(side, dtype=np.float64)] * d, indexing="ij")
    return rng.permutation(np.stack([a.ravel() for a in axes], axis=1))


CASES = {  # name: (generator, n, intrinsic d, seed, range_max)
    "cube2": (cube, 500, 2, 11, 256),
    "sphere5": (sphere, 800, 5, 12, 256),
    "cube10": (cube, 600, 10, 13, 256),
    "clumps3": (clumps, 400, 3, 14, 64),
    "grid2": (grid, 400, 2, 15, 64),
}


def main() -> None:
    arrays: dict[str, np.ndarray] = {}
    for name, (make, n, d, seed, range_max) in CASES.items():
        points = make(np.random.default_rng(seed), n, d).astype(np.float32)
        data = Data(coordinates=points.astype(np.float64), verbose=False)
        ids, errors, scales = data.return_id_scaling_gride(range_max=range_max)
        arrays |= {
            f"{name}__points": points,
            f"{name}__range_max": np.array(range_max),
            f"{name}__ids": np.asarray(ids, dtype=np.float64),
            f"{name}__errors": np.asarray(errors, dtype=np.float64),
            f"{name}__scales": np.asarray(scales, dtype=np.float64),
        }
        print(name, points.shape, np.round(ids, 3))
    versions = {p: md.version(p) for p in ("dadapy", "numpy", "scipy", "scikit-learn")}
    arrays["versions"] = np.array(json.dumps(versions))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes) with {versions}")


if __name__ == "__main__":
    main()
