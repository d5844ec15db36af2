"""What the chunk checksum costs: an activation store written and read with and without Zarr
v3's crc32c codec, against the extraction job of that store; and how long the manifest check
takes per GB of store.

Run by hand: python benchmarks/bench_checksum.py [--layers 25] [--hidden 1024]
[--tokens 16384] [--rounds 3] [--forward-windows 2]

Default shape: Pythia-410m's store (25 layers incl. the embedding output × hidden 1024 × 16 384
tokens, float16: 839 MB). In one process, rounds alternating (without, with), best of each:

- write: ``StoreWriter`` fed as extraction feeds it (per layer, blocks of 2048 float16 rows with
  their max |value| known), closed (consolidated metadata), into the page cache;
- read: every layer through ``ActivationStore.read`` (float32 out, as the metrics read it) and
  through Zarr alone (float16, no cast), the store just written (warm page cache).

The extraction job of that store: a bare forward of a 410m-shaped GPT-NeoX (vocabulary 50 304,
random weights; the extraction benchmarks put extraction asked for nothing at 0.95–1.04 of it)
over ``--forward-windows`` windows of 512 at batch 4 on one thread (as the extract job runs),
scaled to the store's tokens, plus the 4.1 s start-up the extract-job benchmark measured.
Target (issue 28): the checksum's extra write + read time ≤ 5 % of that job.

Then the manifest of the checksummed store is written and checked (``verify``: every file read
and hashed) on 1 and 2 threads, warm page cache: seconds per GB.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from repgeom.activations.store import ActivationStore, StoreWriter

BLOCK = 2048  # rows per append: one batch of 4 windows of 512
START_UP = 4.1  # s: imports and loading of an extract job (bench_extract_job.py, 2026-12-04)


def write(path: Path, layers: int, hidden: int, tokens: int, checksum: bool) -> tuple[float, float]:
    """(wall, CPU of all threads) seconds."""
    rng = np.random.default_rng(0)
    block = rng.normal(size=(BLOCK, hidden)).astype(np.float16)
    amax = float(np.abs(block).max())
    n_seq = tokens // 512
    index = {
        "token_id": rng.integers(0, 50_304, tokens),
        "sequence": np.arange(tokens) // 512,
        "position": np.arange(tokens) % 512,
    }
    means = np.zeros((n_seq, hidden), np.float32)
    t, c = time.perf_counter(), time.process_time()
    with StoreWriter(path, range(layers), hidden, index, np.full(n_seq, 512), checksum) as store:
        for start in range(0, tokens, BLOCK):
            rows = block[: min(BLOCK, tokens - start)]
            for i in range(layers):
                store.tokens[i].append(rows, amax)
        for i in range(layers):
            store.means[i].append(means)
        store.close({})
    return time.perf_counter() - t, time.process_time() - c


def read(path: Path) -> tuple[float, float]:
    """(ActivationStore.read of every layer, float32; Zarr alone, float16) seconds."""
    store = ActivationStore(path)
    t = time.perf_counter()
    for layer in store.layers:
        store.read(layer)
    lib = time.perf_counter() - t
    arr = store.root["hidden_state"]
    t = time.perf_counter()
    for slot in range(arr.shape[0]):
        arr[slot]
    return lib, time.perf_counter() - t


def forward_seconds(tokens: int, windows: int) -> float:
    """Bare forward of a Pythia-410m-shaped model, one thread, scaled to ``tokens``."""
    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_extraction import bare_forward, model_and_windows
    from bench_real_vocab import SHAPES, config

    from repgeom.activations.extraction import batches_in_order

    torch.set_num_threads(1)
    hidden, layers, heads, inter, _ = SHAPES["410m"]
    model, w = model_and_windows(windows, 512, config(hidden, layers, heads, inter))
    rows = batches_in_order(len(w.lengths), 4)
    bare_forward(model.base_model, w, rows[:1])  # warm-up
    t = time.perf_counter()
    bare_forward(model.base_model, w, rows)
    return (time.perf_counter() - t) * tokens / (windows * 512)


def verify_seconds(path: Path, root: Path) -> dict[int, float]:
    from repgeom.workflow.manifest import verify, write_manifest

    manifest = root / "results" / "manifest.tsv"
    write_manifest([(str(path.relative_to(root)), "extract", "c", "c")], manifest, root)
    out = {}
    for threads in (1, 2, 1, 2):
        t = time.perf_counter()
        assert not verify(manifest, root, threads=threads)
        out[threads] = min(out.get(threads, np.inf), time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layers", type=int, default=25)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--tokens", type=int, default=16384)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--forward-windows", type=int, default=2)
    a = ap.parse_args()
    size = a.layers * a.hidden * a.tokens * 2
    print(
        f"store: {a.layers} layers × {a.hidden} × {a.tokens} tokens float16 = {size / 1e6:.0f} MB"
    )
    best = {k: np.inf for k in ("w0", "w1", "c0", "c1", "r0", "r1", "z0", "z1")}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for r in range(a.rounds):
            for checksum in (False, True) if r % 2 == 0 else (True, False):
                path = root / "results" / "activations" / f"{int(checksum)}.zarr"
                k = str(int(checksum))
                wall, cpu = write(path, a.layers, a.hidden, a.tokens, checksum)
                best["w" + k], best["c" + k] = min(best["w" + k], wall), min(best["c" + k], cpu)
                lib, raw = read(path)
                best["r" + k], best["z" + k] = min(best["r" + k], lib), min(best["z" + k], raw)
                if not (checksum and r == a.rounds - 1):
                    shutil.rmtree(path)
        print(
            f"write: {best['w0']:.2f} s without, {best['w1']:.2f} s with crc32c "
            f"(ratio {best['w1'] / best['w0']:.3f}, +{best['w1'] - best['w0']:.2f} s); CPU "
            f"{best['c0']:.2f} s vs {best['c1']:.2f} s (ratio {best['c1'] / best['c0']:.3f})"
        )
        print(
            f"read (ActivationStore, float32): {best['r0']:.2f} s vs {best['r1']:.2f} s "
            f"(ratio {best['r1'] / best['r0']:.3f}); Zarr alone (float16): {best['z0']:.2f} s vs "
            f"{best['z1']:.2f} s (ratio {best['z1'] / best['z0']:.3f})"
        )
        extra = max(0.0, best["w1"] - best["w0"]) + max(0.0, best["r1"] - best["r0"])
        forward = forward_seconds(a.tokens, a.forward_windows)
        job = forward + START_UP
        print(
            f"extraction job of this store ≈ {job:.1f} s (bare forward {forward:.1f} s on one "
            f"thread, scaled from {a.forward_windows * 512} tokens, + {START_UP} s start-up); "
            f"checksum write extra {100 * max(0.0, best['w1'] - best['w0']) / job:.2f} % of it, "
            f"write + one read {100 * extra / job:.2f} %  (target ≤ 5 %)"
        )
        store = next((root / "results" / "activations").glob("1.zarr"))
        gb = sum(f.stat().st_size for f in store.rglob("*") if f.is_file()) / 1e9
        for threads, s in verify_seconds(store, root).items():
            print(
                f"verify ({threads} thread{'s' * (threads > 1)}, warm page cache): {s:.2f} s "
                f"for {gb:.2f} GB = {s / gb:.2f} s/GB"
            )


if __name__ == "__main__":
    main()
