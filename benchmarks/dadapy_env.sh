#!/usr/bin/env bash
# Creates benchmarks/.dadapy-venv (git-ignored): DADApy 0.3.4 and its pins (numpy<2, jax 0.4.30),
# kept apart from the main environment, whose zarr 3 needs numpy ≥ 2. Used by
# make_gride_fixture.py and bench_gride.py; repgeom itself never imports dadapy.
#   bash benchmarks/dadapy_env.sh            # creates it (once; a second run only checks it)
#   benchmarks/.dadapy-venv/bin/python -c "import dadapy"
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.dadapy-venv"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip setuptools wheel
    # numpy must be in place before dadapy's C extensions build against it
    "$venv/bin/python" -m pip install --quiet "numpy==1.26.4" "cython<3.1"
    # dadapy 0.3.4 is an sdist (C extensions, built here); it pins jax/jaxlib 0.4.30, flax 0.8.5
    "$venv/bin/python" -m pip install --quiet --no-build-isolation "dadapy==0.3.4" \
        "scipy==1.17.1" "scikit-learn==1.9.1"
fi
"$venv/bin/python" - <<'PY'
import importlib.metadata as md

for name in ("dadapy", "numpy", "scipy", "scikit-learn", "jax", "jaxlib"):
    print(f"{name}=={md.version(name)}")
PY
