"""Reading one layer: plain xarray on the store against the library reader, and against the
previous layout (one 2-D Zarr array per layer, read by the library as before).

Run by hand: python benchmarks/bench_store_read.py [n_tokens] [hidden] [layers]
Target (issue 13): xarray reads one layer at no more cost than the library did. Each read is
timed five times, best kept, all in one process, cold reads excluded (one untimed read first).
"""

from __future__ import annotations

import sys
import tempfile
import time

import numpy as np
import xarray as xr
import zarr

from repgeom.activations.store import ActivationStore, StoreWriter, chunk_rows


def best(fn, repeats: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(n: int = 100_000, d: int = 768, n_layers: int = 4) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, d)).astype(np.float16)
    index = {
        "token_id": rng.integers(0, 50_000, n),
        "sequence": np.arange(n) // 512,
        "position": np.arange(n) % 512,
    }
    layer = n_layers // 2
    n_seq = int(index["sequence"].max()) + 1
    with tempfile.TemporaryDirectory() as tmp:
        store = StoreWriter(
            f"{tmp}/new.zarr", range(n_layers), d, index, np.bincount(index["sequence"])
        )
        for i in range(n_layers):
            store.tokens[i].append(x)
            store.means[i].append(np.zeros((n_seq, d), np.float32))
        store.close({})
        old = zarr.open_group(f"{tmp}/old.zarr", mode="w").create_group("hidden")
        for i in range(n_layers):
            old.create_array(str(i), data=x, chunks=(chunk_rows(d, 2), d), compressors=None)
        reader = ActivationStore(f"{tmp}/new.zarr")
        t_old = best(lambda: np.asarray(old[str(layer)][:], dtype=np.float32))
        t_lib = best(lambda: reader.read(layer))
        t_xr16 = best(lambda: xr.open_zarr(f"{tmp}/new.zarr").hidden_state.sel(layer=layer).values)
        t_xr32 = best(
            lambda: (
                xr.open_zarr(f"{tmp}/new.zarr")
                .hidden_state.sel(layer=layer)
                .values.astype(np.float32)
            )
        )
        t_open = best(lambda: xr.open_zarr(f"{tmp}/new.zarr"))
        same = np.array_equal(
            xr.open_zarr(f"{tmp}/new.zarr").hidden_state.sel(layer=layer).values, x
        )
    mb = n * d * 2 / 2**20
    print(f"one layer of {n} × {d} float16 ({mb:.0f} MiB), {n_layers} layers in the store")
    print(f"previous layout, library read (float32): {t_old * 1e3:7.1f} ms")
    print(f"library read, new layout (float32):      {t_lib * 1e3:7.1f} ms")
    print(f"xr.open_zarr + sel + .values (float16):  {t_xr16 * 1e3:7.1f} ms  (open included)")
    print(f"the same, cast to float32:               {t_xr32 * 1e3:7.1f} ms")
    print(f"xr.open_zarr alone:                      {t_open * 1e3:7.1f} ms")
    print(f"ratio xarray float32 / previous library: {t_xr32 / t_old:.2f}  (target ≤ 1)")
    print(f"  the same without the open:             {(t_xr32 - t_open) / t_old:.2f}")
    print(f"ratio xarray float16 / previous library: {t_xr16 / t_old:.2f}; values equal: {same}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:4]))
