"""Which values two results trees share: every netCDF dataset and Zarr store compared variable by
variable (values and coordinates, not the provenance attributes, which name the commit).

Run by hand: python benchmarks/compare_runs.py BEFORE/results AFTER/results
Prints one line per dataset: identical, or the variables whose values moved (largest relative
change), or what one tree lacks.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import xarray as xr


def datasets(root: Path) -> dict[str, Path]:
    """Relative path -> file of every netCDF dataset and Zarr store under root."""
    found = {str(p.relative_to(root)): p for p in root.rglob("*.nc")}
    found.update({str(p.relative_to(root)): p for p in root.rglob("*.zarr") if p.is_dir()})
    return found


def open_any(path: Path) -> xr.Dataset:
    return (xr.open_zarr(path) if path.suffix == ".zarr" else xr.open_dataset(path)).load()


def moved(a: xr.Dataset, b: xr.Dataset) -> list[str]:
    """Variables (and coordinates) whose values differ, with their largest relative change."""
    out = []
    for name in sorted(set(a.variables) | set(b.variables)):
        if name not in a.variables or name not in b.variables:
            out.append(f"{name} (only in one)")
            continue
        x, y = a[name], b[name]
        if x.dims != y.dims or x.shape != y.shape:
            out.append(f"{name} (shape {x.shape} vs {y.shape})")
        elif not x.equals(y):
            if np.issubdtype(x.dtype, np.number):
                xv, yv = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
                scale = np.nanmax(np.abs(xv)) or 1.0
                out.append(f"{name} (max |Δ|/max|x| = {np.nanmax(np.abs(xv - yv)) / scale:.2e})")
            else:
                out.append(f"{name} (labels)")
    return out


def main(before: str, after: str) -> None:
    a, b = datasets(Path(before)), datasets(Path(after))
    same = 0
    for rel in sorted(a.keys() | b.keys()):
        if rel not in a or rel not in b:
            print(f"{rel}: only in {'after' if rel in b else 'before'}")
            continue
        diff = moved(open_any(a[rel]), open_any(b[rel]))
        if diff:
            print(f"{rel}: {', '.join(diff)}")
        else:
            same += 1
    print(f"{same} of {len(a.keys() & b.keys())} datasets identical")


if __name__ == "__main__":
    main(*sys.argv[1:3])
