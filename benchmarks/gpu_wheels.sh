#!/usr/bin/env bash
# Wheels of the packages the GPU machine lacks (its Python 3.12 has torch, numpy, transformers,
# tokenizers, xarray, pandas, scipy, matplotlib, h5py, tqdm, pyyaml; not snakemake, zarr,
# jsonschema, h5netcdf and their dependencies), for CPython 3.12 on manylinux x86_64, into .whl/
# (git-ignored), at the versions installed here. Run here, from the repository root, before a
# device call that carries .whl:  bash benchmarks/gpu_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .whl && mkdir -p .whl
platforms=()
for n in 28 27 17 24 31 34 35; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
platforms+=(--platform manylinux2014_x86_64 --platform manylinux1_x86_64)
# the dependency closure of what the machine lacks, as installed here, less what it has
python3 - > .whl/wanted.txt <<'PY'
import re
from importlib import metadata

HAS = {
    "torch", "numpy", "transformers", "tokenizers", "xarray", "pandas", "scipy", "matplotlib",
    "h5py", "tqdm", "pyyaml", "packaging", "typing-extensions", "filelock", "fsspec", "jinja2",
    "markupsafe", "networkx", "sympy", "mpmath", "huggingface-hub", "safetensors", "regex",
    "requests", "urllib3", "idna", "certifi", "charset-normalizer", "pillow", "contourpy",
    "cycler", "fonttools", "kiwisolver", "pyparsing", "python-dateutil", "six", "pytz", "tzdata",
    "pytest", "pluggy", "iniconfig", "setuptools", "pip", "wheel",
}
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
todo, seen = ["snakemake", "zarr", "h5netcdf", "jsonschema"], set()
while todo:
    name = norm(todo.pop())
    if name in seen or name in HAS:
        continue
    seen.add(name)
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        continue
    print(f"{name}=={dist.version}")
    for req in dist.requires or []:
        if "extra ==" in req:
            continue
        marker = req.split(";", 1)[1] if ";" in req else ""
        if "python_version" in marker and "< \"3.1" in marker:
            continue
        todo.append(re.split(r"[ ;<>=!~\[(]", req.strip(), maxsplit=1)[0])
PY
while read -r pin; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp "${platforms[@]}" -d .whl "$pin" 2>/dev/null \
    || python3 -m pip wheel -q --no-deps -w .whl "$pin" 2>/dev/null \
    || echo "no wheel for $pin"
done < .whl/wanted.txt
rm .whl/wanted.txt
du -sh .whl; ls .whl | wc -l
