"""Atomic writes: a killed job never leaves a complete-looking file or directory."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from repgeom.provenance import comment_header


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a killed earlier attempt
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    target = tmp / path.name
    try:
        yield target
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(target, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def netcdf_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """Attributes netCDF can hold: dicts and None as JSON strings, bools as ints."""
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if isinstance(value, bool | np.bool_):
            out[key] = int(value)
        elif value is None or isinstance(value, dict):
            out[key] = json.dumps(value, sort_keys=True, default=str)
        elif isinstance(value, list | tuple) and not all(
            isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in value
        ):
            out[key] = json.dumps(list(value), default=str)
        else:
            out[key] = value
    return out


def write_dataset(ds: xr.Dataset, path: str | Path) -> None:
    """Write a dataset to netCDF (h5netcdf) atomically, with JSON-encoded complex attributes."""
    ds = ds.copy()
    ds.attrs = netcdf_attrs(ds.attrs)
    for name in ds.variables:
        ds[name].attrs = netcdf_attrs(ds[name].attrs)
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf")


def read_dataset(path: str | Path) -> xr.Dataset:
    """Load a netCDF dataset fully into memory and close the file."""
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()


def write_text(path: str | Path, text: str, meta: Mapping[str, str] | None = None) -> None:
    """Write text atomically; ``meta`` goes first as comment lines (``%`` in .tex, else ``#``)."""
    marker = "%" if Path(path).suffix == ".tex" else "#"
    with atomic_path(path) as tmp:
        tmp.write_text((comment_header(meta, marker) if meta else "") + text, encoding="utf-8")


def write_json(obj: Any, path: str | Path) -> None:
    """Write JSON atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
