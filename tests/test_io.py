"""Atomic writes: nothing appears on failure; a killed attempt's leftovers are cleared."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from repgeom.io import atomic_path, read_dataset, write_dataset


def test_failure_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "out.zarr") as tmp:
        tmp.mkdir()
        (tmp / "part").write_text("half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_stale_attempts_are_cleared_and_dirs_replaced(tmp_path):
    (tmp_path / ".out.zarr.abc123.tmp").mkdir()
    (tmp_path / "out.zarr").mkdir()
    (tmp_path / "out.zarr" / "old").write_text("old")
    with atomic_path(tmp_path / "out.zarr") as tmp:
        tmp.mkdir()
        (tmp / "new").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr"]
    assert [p.name for p in (tmp_path / "out.zarr").iterdir()] == ["new"]


def test_dataset_attrs_round_trip(tmp_path):
    ds = xr.Dataset(
        {"a": ("x", np.arange(3.0))}, attrs={"cfg": {"k": 1}, "flag": True, "l": [1, 2]}
    )
    write_dataset(ds, tmp_path / "d.nc")
    back = read_dataset(tmp_path / "d.nc")
    assert back.attrs["cfg"] == '{"k": 1}' and back.attrs["flag"] == 1
    assert list(back.attrs["l"]) == [1, 2]
    np.testing.assert_array_equal(back.a.values, ds.a.values)
