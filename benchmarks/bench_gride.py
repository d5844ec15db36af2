"""GRIDE on 20000 × 768 at 8 scales: repgeom vs DADApy 0.3.4 on the same points.

Run by hand, after ``bash benchmarks/dadapy_env.sh`` (DADApy lives in its own virtual
environment, benchmarks/.dadapy-venv, and runs here as a subprocess):
    python benchmarks/bench_gride.py [n] [d] [rounds]
Each round times repgeom's ``gride(x, n_scales=8)`` in this process, then DADApy's
``Data(x).return_id_scaling_gride(range_max=256)`` (its defaults d0 = 0.001, d1 = 1000,
eps = 1e-7; n₁ = 1 … 128, n₂ = 2n₁, the same scales) in the subprocess, timed inside it (its
imports excluded), both on the float64 values of the same float32 points saved to a .npy;
wall and CPU seconds (all threads) are printed, the speed-up is of wall time.
Target (the GRIDE issue): repgeom at least as fast, ids, errors and scales equal to 1e-6
relative.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from repgeom.metrics.gride import gride

VENV_PYTHON = Path(__file__).resolve().parent / ".dadapy-venv" / "bin" / "python"
N_SCALES = 8

DADAPY_RUN = """
import json, sys, time
import numpy as np
from dadapy import Data
x = np.load(sys.argv[1]).astype(np.float64)
t, c = time.perf_counter(), time.process_time()
ids, errors, scales = Data(coordinates=x, verbose=False).return_id_scaling_gride(
    range_max=int(sys.argv[3])
)
seconds, cpu = time.perf_counter() - t, time.process_time() - c
np.savez(sys.argv[2], ids=ids, errors=errors, scales=scales)
print(json.dumps({"seconds": seconds, "cpu": cpu}))
"""


def points(n: int, d: int) -> np.ndarray:
    """A 12-dimensional curved manifold plus noise in d dims (as bench_twonn.py), float32."""
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(n, 12))
    x = np.tanh(latent @ rng.normal(size=(12, d))) + 0.01 * rng.normal(size=(n, d))
    return x.astype(np.float32)


def run_dadapy(path: Path, out: Path) -> tuple[float, float, dict[str, np.ndarray]]:
    """DADApy's GRIDE in its own environment: wall and CPU seconds (imports excluded), arrays."""
    done = subprocess.run(
        [str(VENV_PYTHON), "-c", DADAPY_RUN, str(path), str(out), str(2**N_SCALES)],
        capture_output=True,
        text=True,
        check=True,
    )
    times = json.loads(done.stdout.strip().splitlines()[-1])
    with np.load(out) as f:
        return times["seconds"], times["cpu"], {k: f[k] for k in ("ids", "errors", "scales")}


def main(n: int = 20_000, d: int = 768, rounds: int = 3) -> None:
    if not VENV_PYTHON.exists():
        sys.exit("no DADApy environment: run  bash benchmarks/dadapy_env.sh  first")
    x = points(n, d)
    ratios, diffs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        path, out = Path(tmp) / "x.npy", Path(tmp) / "dadapy.npz"
        np.save(path, x)
        print(f"GRIDE, n={n} d={d}, {N_SCALES} scales (n1 = 1 … {2 ** (N_SCALES - 1)})")
        for r in range(rounds):
            t, c = time.perf_counter(), time.process_time()
            est = gride(x, n_scales=N_SCALES)
            t_ours, c_ours = time.perf_counter() - t, time.process_time() - c
            t_dadapy, c_dadapy, ref = run_dadapy(path, out)
            diff = {
                k: float(np.max(np.abs(a / ref[k] - 1)))
                for k, a in (("ids", est.id), ("errors", est.id_error), ("scales", est.scale))
            }
            ratios.append(t_dadapy / t_ours)
            diffs.append(max(diff.values()))
            print(
                f"round {r + 1}: repgeom {t_ours:6.2f} s (CPU {c_ours:6.2f} s)   "
                f"DADApy {t_dadapy:6.2f} s (CPU {c_dadapy:6.2f} s)   "
                f"speed-up {t_dadapy / t_ours:5.2f}x   max relative difference "
                + ", ".join(f"{k} {v:.1e}" for k, v in diff.items())
            )
        np.set_printoptions(precision=4, suppress=True)
        print(f"repgeom ids   {est.id}\n        error {est.id_error}\n        scale {est.scale}")
        print(f"DADApy  ids   {ref['ids']}\n        error {ref['errors']}")
        print(
            f"speed-up {min(ratios):.2f}–{max(ratios):.2f}x over {rounds} rounds (target ≥ 1), "
            f"max relative difference {max(diffs):.1e} (target ≤ 1e-6)"
        )


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:4]))
