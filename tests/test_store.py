"""The activation store opens with plain xarray: named dims, coordinates, consolidated metadata,
float16 with float32 only for layers beyond float16's range; old stores say to re-extract."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
import zarr

from repgeom.activations.store import ActivationStore, OldStoreError, StoreWriter


def written(tmp_path, big_layer: int | None = None):
    """A 3-layer store of 5000 tokens in 50 sequences, written in uneven blocks."""
    rng = np.random.default_rng(0)
    n, d, lengths = 5000, 512, np.full(50, 100)
    index = {
        "token_id": rng.integers(0, 1000, n),
        "sequence": np.repeat(np.arange(50), 100),
        "position": np.tile(np.arange(100), 50),
    }
    x = rng.normal(size=(3, n, d)).astype(np.float32)
    if big_layer is not None:
        x[big_layer, 3500:] *= 1e5  # beyond float16 once 3500 rows are written
    store = StoreWriter(tmp_path / "s.zarr", [0, 1, 2], d, index, lengths)
    for start, stop in ((0, 1000), (1000, 3500), (3500, 5000)):
        for i in range(3):
            store.tokens[i].append(x[i, start:stop])
    means = x.reshape(3, 50, 100, d).mean(axis=2)
    for i in range(3):
        store.means[i].append(means[i])
    store.close({"model": "m"})
    return x, means, index


def test_store_opens_with_xarray(tmp_path):
    x, means, index = written(tmp_path)
    ds = xr.open_zarr(tmp_path / "s.zarr")
    assert ds.hidden_state.dims == ("layer", "token", "hidden")
    assert ds.sequence_mean.dims == ("layer", "sequence", "hidden")
    assert ds.hidden_state.dtype == np.float16 and "hidden_state_float32" not in ds
    assert {"token_id", "position", "token_sequence", "length"} <= set(ds.coords)
    assert ds.token_sequence.dims == ("token",) and ds.length.dims == ("sequence",)
    np.testing.assert_array_equal(ds.token_id, index["token_id"])
    np.testing.assert_array_equal(ds.layer, [0, 1, 2])
    np.testing.assert_array_equal(ds.hidden_state.sel(layer=1), x[1].astype(np.float16))
    np.testing.assert_array_equal(ds.sequence_mean.sel(layer=2), means[2])
    assert ds.attrs["model"] == "m" and ds.attrs["layer_dtypes"] == ["float16"] * 3
    for name in ("hidden_state", "sequence_mean", "token_id"):
        assert {"long_name", "units"} <= set(ds[name].attrs)
    meta = json.loads((tmp_path / "s.zarr" / "zarr.json").read_text())
    assert "consolidated_metadata" in meta  # one read gives every array's metadata
    store = ActivationStore(tmp_path / "s.zarr")
    np.testing.assert_array_equal(store.read(1), ds.hidden_state.sel(layer=1).astype("float32"))
    chunk = zarr.open_group(str(tmp_path / "s.zarr"))["hidden_state"].chunks
    assert chunk[0] == 1 and chunk[1] * chunk[2] * 2 >= 1 << 20  # one layer, ≥ 1 MB


def test_overflowing_layer_moves_to_float32(tmp_path):
    x, _, _ = written(tmp_path, big_layer=1)
    store = ActivationStore(tmp_path / "s.zarr")
    assert [str(store.dtype(i)) for i in store.layers] == ["float16", "float32", "float16"]
    np.testing.assert_array_equal(store.read(1)[3500:], x[1, 3500:])
    np.testing.assert_allclose(store.read(1)[:3500], x[1, :3500], rtol=2**-10, atol=1e-3)
    ds = xr.open_zarr(tmp_path / "s.zarr")
    assert ds.attrs["layer_dtypes"] == ["float16", "float32", "float16"]
    assert np.isnan(ds.hidden_state.sel(layer=1).values).all()  # never a silently wrong value
    np.testing.assert_array_equal(ds.hidden_state_float32.sel(layer_float32=1), store.read(1))
    chunks = tmp_path / "s.zarr" / "hidden_state" / "c" / "1"
    assert not chunks.exists() or not any(p.is_file() for p in chunks.rglob("*"))


def test_old_layout_says_to_re_extract(tmp_path):
    root = zarr.open_group(str(tmp_path / "old.zarr"), mode="w")
    root.create_group("hidden").create_array("0", data=np.zeros((4, 8), np.float16))
    with pytest.raises(OldStoreError, match="extract it again"):
        ActivationStore(tmp_path / "old.zarr")


READ_WITHOUT_REPGEOM = """
import sys, numpy as np, xarray as xr
assert "repgeom" not in sys.modules
ds = xr.open_zarr(sys.argv[1])
np.savez(sys.argv[2], layer=ds.layer.values, dims=np.array(ds.hidden_state.dims),
         token_id=ds.token_id.values, seq=ds.token_sequence.values, pos=ds.position.values,
         h=ds.hidden_state.sel(layer=int(ds.layer[-1])).values,
         m=ds.sequence_mean.sel(layer=0).values, length=ds.length.values)
"""


@pytest.mark.slow
def test_workflow_store_opens_without_repgeom(run_dir, tmp_path):
    path = run_dir / "results" / "activations" / "decoder" / "step8" / "docs.zarr"
    out = tmp_path / "x.npz"
    subprocess.run([sys.executable, "-c", READ_WITHOUT_REPGEOM, str(path), str(out)], check=True)
    got = np.load(out)
    store = ActivationStore(path)
    assert got["dims"].tolist() == ["layer", "token", "hidden"]
    assert got["layer"].tolist() == store.layers
    np.testing.assert_array_equal(got["token_id"], store.token_id)
    np.testing.assert_array_equal(got["seq"], store.sequence)
    np.testing.assert_array_equal(got["pos"], store.position)
    np.testing.assert_array_equal(got["h"].astype(np.float32), store.read(store.layers[-1]))
    np.testing.assert_array_equal(got["m"], store.read_sentences(0))
    assert got["length"].tolist() == np.bincount(store.sequence).tolist()


def test_a_failed_background_write_is_raised_and_stops_the_store(tmp_path):
    index = {k: np.zeros(600, np.int64) for k in ("token_id", "sequence", "position")}
    store = StoreWriter(tmp_path / "s.zarr", [0], 8, index)
    store.tokens[0].append(np.ones((600, 8), np.float32))  # whole chunks go to the writer thread
    store.write(store.root["hidden_state"], (0, slice(0, 10)), np.ones((3, 8)))  # wrong shape
    with pytest.raises(ValueError):
        store.close({})
    # as a context manager, an error in the caller waits for the writes in flight and stops
    # the thread before the caller removes the unfinished store
    with (
        pytest.raises(RuntimeError, match="caller"),
        StoreWriter(tmp_path / "t.zarr", [0], 8, index) as s,
    ):
        s.tokens[0].append(np.ones((600, 8), np.float32))
        raise RuntimeError("caller failed")
    assert s._pool._shutdown and all(f.done() for f in s._pending)
