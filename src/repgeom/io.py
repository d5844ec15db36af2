"""Atomic writes: a killed job never leaves a complete-looking file or directory; a full disk
is one line naming the path and the free space. Chunk checksums of the Zarr stores: a chunk
whose bytes changed is an error naming the store and the chunk."""

from __future__ import annotations

import errno
import itertools
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import xarray as xr

from repgeom.provenance import comment_header

T = TypeVar("T")


def is_disk_full(err: BaseException) -> bool:
    """Whether an error is a full disk (ENOSPC)."""
    return isinstance(err, OSError) and err.errno == errno.ENOSPC


def _mount(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() or not os.path.ismount(path):
        if path.parent == path:
            break
        path = path.parent
    return path


def disk_full(path: str | Path) -> OSError:
    """OSError(ENOSPC) whose message is one line naming the path being written, the free space
    and the mount it is on, and what to do."""
    from repgeom.runtime import format_bytes

    mount = _mount(Path(path))
    try:
        free = format_bytes(shutil.disk_usage(mount).free)
    except OSError:
        free = "unknown space"
    return OSError(
        errno.ENOSPC,
        f"no space left on device writing {path} ({free} free on {mount}); free space or "
        "point results/ elsewhere",
    )


@contextmanager
def no_space_for(path: str | Path) -> Iterator[None]:
    """Re-raise a full disk inside as :func:`disk_full` for ``path`` (other errors as they are)."""
    try:
        yield
    except OSError as err:
        if is_disk_full(err):
            raise disk_full(path) from None  # the message says it all (no zarr/asyncio chain)
        raise


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto ``path`` only if the block succeeds.
    A full disk (ENOSPC) inside is re-raised as :func:`disk_full` for ``path``."""
    path = Path(path)
    with no_space_for(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a killed earlier attempt
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    target = tmp / path.name
    try:
        with no_space_for(path):
            yield target
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            os.replace(target, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class CorruptStoreError(ValueError):
    """A chunk of a Zarr store whose bytes do not match the checksum written with them."""


def checksum_codecs(*compressors: Any) -> tuple[Any, ...]:
    """The ``compressors=`` of a checksummed Zarr v3 array: the given bytes-to-bytes codecs, then
    crc32c (4 bytes at the end of each chunk, checked on every read)."""
    from zarr.codecs import Crc32cCodec

    return (*compressors, Crc32cCodec())


def chunk_path(array: Any, index: Sequence[int]) -> str:
    """A chunk's key in its store, from the store's root: ``hidden_state/c/0/3/0``."""
    key = array.metadata.chunk_key_encoding.encode_chunk_key(tuple(int(i) for i in index))
    return f"{array.path}/{key}" if array.path else key


def bad_chunk(array: Any, chunks: Sequence[Iterable[int] | None] | None = None) -> tuple | None:
    """The first chunk of ``array`` that cannot be decoded (its checksum does not match), among
    ``chunks`` (per dimension the chunk indices to look at; None: all), or None."""
    grid = [-(-s // c) for s, c in zip(array.shape, array.chunks, strict=True)]
    chunks = chunks or [None] * len(grid)
    ranges = [range(n) if c is None else c for n, c in zip(grid, chunks, strict=True)]
    for index in itertools.product(*ranges):
        region = tuple(
            slice(i * c, min((i + 1) * c, s))
            for i, c, s in zip(index, array.chunks, array.shape, strict=True)
        )
        try:
            array[region]
        except ValueError:
            return index
    return None


def checked_read(
    store: str | Path,
    array: Any,
    read: Callable[[], T],
    chunks: Sequence[Iterable[int] | None] | None = None,
) -> T:
    """``read()`` of a Zarr array, where a chunk that fails its checksum is raised as
    :class:`CorruptStoreError` naming the store and the chunk (``chunks``: per dimension the
    chunk indices the read touches, None: all; looked at only after a failed read)."""
    try:
        return read()
    except CorruptStoreError:
        raise
    except ValueError as err:
        index = bad_chunk(array, chunks)
        if index is None:
            raise
        raise CorruptStoreError(
            f"{store}: chunk {chunk_path(array, index)} (chunk {tuple(index)} of "
            f"{array.path!r}) is corrupt: its bytes do not match the checksum written with them "
            f"({err}); the store cannot be trusted: delete {store} and rerun snakemake"
        ) from None


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
