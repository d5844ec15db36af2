"""The results-tree comparison used by the SLURM test finds every kind of difference."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import xarray as xr
import zarr

from tests.compare import differences


def make_tree(root):
    ds = xr.Dataset(
        {"x": (("layer",), np.arange(3.0), {"units": "1"})},
        coords={"layer": [0, 1, 2]},
        attrs={"device": "cpu", "config_hash": "abc"},
    )
    (root / "metrics").mkdir(parents=True)
    ds.to_netcdf(root / "metrics" / "m.nc", engine="h5netcdf")
    group = zarr.open_group(str(root / "a.zarr"), mode="w")
    group.attrs["device"] = "cpu"
    group.create_group("train").create_array("ids", data=np.arange(6, dtype="int32"))
    (root / "a.zarr" / ".snakemake_timestamp").touch()
    (root / "table.csv").write_text("a,b\n1,2\n")


def rewrite_nc(path, edit):
    with xr.open_dataset(path) as ds:
        ds = ds.load()
    edit(ds)
    ds.to_netcdf(path, engine="h5netcdf")


def test_identical_trees_and_machine_attrs(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    make_tree(a)
    shutil.copytree(a, b)
    assert differences(a, b) == []
    rewrite_nc(b / "metrics" / "m.nc", lambda ds: ds.attrs.update(device="cuda:0"))
    zarr.open_group(str(b / "a.zarr"), mode="a").attrs["device"] = "cuda:0"
    assert differences(a, b) == []


def test_each_difference_is_reported(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    make_tree(a)
    shutil.copytree(a, b)
    rewrite_nc(b / "metrics" / "m.nc", lambda ds: ds.x.values.__setitem__(1, 1.0 + 1e-12))
    zarr.open_group(str(b / "a.zarr"), mode="a")["train/ids"][2] = 7
    (b / "table.csv").write_text("a,b\n1,3\n")
    (b / "extra.json").write_text("{}")
    found = differences(a, b)
    assert [line.split(":")[0] for line in found] == [
        f"only in {b}",
        "a.zarr",
        "metrics/m.nc",
        "table.csv",
    ]


@pytest.mark.parametrize(
    "edit",
    [
        lambda ds: ds.attrs.update(config_hash="abd"),
        lambda ds: ds.x.attrs.update(units="2"),
        lambda ds: ds.coords.update({"layer": [0, 1, 3]}),
    ],
    ids=["dataset attribute", "variable attribute", "coordinate"],
)
def test_dataset_differences_are_reported(tmp_path, edit):
    a, b = tmp_path / "a", tmp_path / "b"
    make_tree(a)
    shutil.copytree(a, b)
    rewrite_nc(b / "metrics" / "m.nc", edit)
    assert [line.split(":")[0] for line in differences(a, b)] == ["metrics/m.nc"]
