"""Compare two results trees: every dataset value by value, every other file byte for byte."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import xarray as xr
import zarr

# Provenance attributes that record where a job ran rather than what it computed.
MACHINE_ATTRS = frozenset({"device"})
# Files Snakemake itself writes into directory outputs (their content is not a result).
SNAKEMAKE_MARKERS = frozenset({".snakemake_timestamp"})


def result_entries(root: Path) -> dict[str, str]:
    """Relative path -> kind ('netcdf', 'zarr' or 'file') of everything under ``root``; a Zarr
    store is one entry, its files are not listed."""
    entries: dict[str, str] = {}
    stores = sorted(p for p in root.rglob("*.zarr") if p.is_dir())
    for store in stores:
        entries[str(store.relative_to(root))] = "zarr"
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name in SNAKEMAKE_MARKERS:
            continue
        if any(store in path.parents for store in stores):
            continue
        entries[str(path.relative_to(root))] = "netcdf" if path.suffix == ".nc" else "file"
    return entries


def _attrs(attrs: dict) -> dict:
    return {k: v for k, v in attrs.items() if k not in MACHINE_ATTRS}


def netcdf_difference(a: Path, b: Path) -> str | None:
    """Why two netCDF datasets differ (values, coordinates, dims or attributes), or None."""
    with xr.open_dataset(a) as da, xr.open_dataset(b) as db:
        da, db = da.load(), db.load()
    for ds in (da, db):
        ds.attrs = _attrs(ds.attrs)
    try:
        xr.testing.assert_identical(da, db)
    except AssertionError as err:
        return str(err)
    return None


def _zarr_arrays(group: zarr.Group, prefix: str = "") -> dict[str, zarr.Array]:
    out = {}
    for name, member in group.members():
        if isinstance(member, zarr.Group):
            out[f"{prefix}{name}/"] = member
            out.update(_zarr_arrays(member, f"{prefix}{name}/"))
        else:
            out[f"{prefix}{name}"] = member
    return out


def zarr_difference(a: Path, b: Path) -> str | None:
    """Why two Zarr stores differ (members, array values, dtypes or attributes), or None."""
    ga, gb = zarr.open_group(str(a), mode="r"), zarr.open_group(str(b), mode="r")
    if _attrs(dict(ga.attrs)) != _attrs(dict(gb.attrs)):
        return "root attributes differ"
    with warnings.catch_warnings():  # Snakemake's marker file in the store is not Zarr
        warnings.filterwarnings("ignore", "Object at .snakemake_timestamp")
        ma, mb = _zarr_arrays(ga), _zarr_arrays(gb)
    if ma.keys() != mb.keys():
        return f"members differ: {sorted(ma.keys() ^ mb.keys())}"
    for name, x in ma.items():
        y = mb[name]
        if _attrs(dict(x.attrs)) != _attrs(dict(y.attrs)):
            return f"{name}: attributes differ"
        if isinstance(x, zarr.Array):
            if x.dtype != y.dtype or x.shape != y.shape:
                return f"{name}: {x.dtype}{x.shape} vs {y.dtype}{y.shape}"
            if not np.array_equal(x[...], y[...], equal_nan=x.dtype.kind in "fc"):
                return f"{name}: values differ"
    return None


def differences(a: Path, b: Path) -> list[str]:
    """One line per entry that is missing from one tree or differs between them."""
    ea, eb = result_entries(a), result_entries(b)
    out = [f"only in {a}: {p}" for p in sorted(ea.keys() - eb.keys())]
    out += [f"only in {b}: {p}" for p in sorted(eb.keys() - ea.keys())]
    for rel in sorted(ea.keys() & eb.keys()):
        kind = ea[rel]
        if kind == "netcdf":
            why = netcdf_difference(a / rel, b / rel)
        elif kind == "zarr":
            why = zarr_difference(a / rel, b / rel)
        else:
            why = None if (a / rel).read_bytes() == (b / rel).read_bytes() else "bytes differ"
        if why:
            out.append(f"{rel}: {why}")
    return out
