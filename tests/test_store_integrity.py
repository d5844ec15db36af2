"""Stores you can trust: a changed chunk raises naming the store and the chunk, the manifest
lists activation stores chunk by chunk and reports a changed chunk by path, a full disk is one
line naming the path and leaves nothing, a corpus shorter than one window says which and why."""

from __future__ import annotations

import errno
import json
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
import zarr

from repgeom.activations.store import ActivationStore, CorruptStoreError, StoreWriter
from repgeom.data import tokens as T
from repgeom.io import atomic_path
from repgeom.workflow.manifest import main, verify, write_manifest

N, D = 3000, 256  # float16 rows of 512 B: chunks of 2048 rows, two per layer


def write_store(path, checksum: bool = True) -> np.ndarray:
    """A 2-layer store of N tokens in 30 sequences."""
    rng = np.random.default_rng(0)
    index = {
        "token_id": rng.integers(0, 1000, N),
        "sequence": np.repeat(np.arange(30), N // 30),
        "position": np.tile(np.arange(N // 30), 30),
    }
    x = rng.normal(size=(2, N, D)).astype(np.float32)
    with StoreWriter(path, [0, 1], D, index, np.full(30, N // 30), checksum=checksum) as store:
        for i in range(2):
            store.tokens[i].append(x[i])
            store.means[i].append(x[i].reshape(30, -1, D).mean(axis=1))
        store.close({"model": "m"})
    return x


def corrupt(path, at: int = 100) -> None:
    """Flip one byte of a file, keeping its size (as a user's overwrite or bad sector would)."""
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def test_corrupt_activation_chunk_names_store_and_chunk(tmp_path):
    path = tmp_path / "c.zarr"
    x = write_store(path)
    assert zarr.open_array(str(path / "hidden_state")).metadata.codecs[-1].to_dict() == {
        "name": "crc32c"
    }
    corrupt(path / "hidden_state" / "c" / "1" / "1" / "0")  # layer 1, rows 2048-2999
    store = ActivationStore(path)
    assert store.checksummed
    np.testing.assert_array_equal(store.read(0), x[0].astype(np.float16))  # other chunks read
    np.testing.assert_array_equal(store.read_rows(1, 0, 2048), x[1, :2048].astype(np.float16))
    where = f"{path}: chunk hidden_state/c/1/1/0"
    reads = {
        "read": lambda: store.read(1),
        "read rows": lambda: store.read(1, np.array([5, 2500])),
        "read_rows": lambda: store.read_rows(1, 2000, 2100),
        "iter_blocks": lambda: list(store.iter_blocks(1, block=1000)),
    }
    for what, read in reads.items():
        with pytest.raises(CorruptStoreError, match="delete .* and rerun snakemake") as err:
            read()
        assert str(err.value).startswith(where), what
    with pytest.raises(ValueError, match="checksum"):  # plain xarray refuses it as well
        xr.open_zarr(path).hidden_state.sel(layer=1).load()
    corrupt(path / "sequence_mean" / "c" / "0" / "0" / "0", at=8)
    with pytest.raises(CorruptStoreError, match="chunk sequence_mean/c/0/0/0"):
        store.read_sentences(0)
    corrupt(path / "token_id" / "c" / "0", at=2)
    with pytest.raises(CorruptStoreError, match="chunk token_id/c/0"):
        ActivationStore(path)


def test_store_without_checksums_still_reads(tmp_path):
    """Layout 2 (written before checksums) reads as it did; xarray opens both layouts."""
    x = write_store(tmp_path / "old.zarr", checksum=False)
    store = ActivationStore(tmp_path / "old.zarr")
    assert store.attrs["store_layout"] == 2 and not store.checksummed
    np.testing.assert_array_equal(store.read(1), x[1].astype(np.float16))
    ds = xr.open_zarr(tmp_path / "old.zarr")
    assert ds.hidden_state.dims == ("layer", "token", "hidden")


def test_corrupt_token_chunk_names_store_and_chunk(tmp_path):
    ids = np.arange(1100 * 512, dtype=np.int32).reshape(1100, 512) % 400  # chunks of 512 rows
    w = T.Windows(ids, np.full(1100, 512, dtype=np.int32))
    path = tmp_path / "t.zarr"
    T.write_tokens(path, {"train": w, "eval": w}, {"window": 512})
    corrupt(path / "eval" / "ids" / "c" / "1" / "0")
    np.testing.assert_array_equal(T.read_tokens(path, "train").ids, ids)
    np.testing.assert_array_equal(T.read_tokens(path, "eval", 512 * 512).ids, ids[:512])
    with pytest.raises(CorruptStoreError, match=r"chunk eval/ids/c/1/0 .* rerun snakemake") as e:
        T.read_tokens(path, "eval")
    assert str(e.value).startswith(f"{path}: ")
    corrupt(path / "train" / "lengths" / "c" / "0", at=1)
    with pytest.raises(CorruptStoreError, match="chunk train/lengths/c/0"):
        T.read_tokens(path, "train")


def results_tree(root):
    """results/ with a figure and one activation store, and its manifest."""
    store = "results/activations/m/step8/docs.zarr"
    write_store(root / store)
    (root / store / ".snakemake_timestamp").touch()  # Snakemake's, not the store's
    (root / "results" / "figures").mkdir(parents=True)
    (root / "results" / "figures" / "a.png").write_bytes(b"png" * 100)
    rows = [(store, "extract", "cfg", "code1"), ("results/figures/a.png", "fig", "cfg", "code2")]
    manifest = root / "results" / "manifest.tsv"
    write_manifest(rows, manifest, threads=2)
    return store, manifest


def test_manifest_covers_store_chunks_and_reports_a_changed_one(tmp_path, capsys):
    store, manifest = results_tree(tmp_path)
    listed = manifest.read_text().splitlines()
    paths = [line.split("\t")[0] for line in listed[1:]]
    chunks = [f"{store}/hidden_state/c/{i}/{j}/0" for i in (0, 1) for j in (0, 1)]
    assert set(chunks) <= set(paths) and f"{store}/zarr.json" in paths
    assert f"{store}/.snakemake_timestamp" not in paths
    assert all(line.split("\t")[3] == "extract" for line in listed if store in line)
    assert not verify(manifest)
    assert main([str(manifest)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"all {len(paths)} artifacts match {manifest}") and "1 Zarr" in out

    corrupt(tmp_path / chunks[3])
    (tmp_path / chunks[0]).unlink()
    diff = verify(manifest)
    assert diff.changed == [chunks[3]] and diff.missing == [chunks[0]] and not diff.unexpected
    assert main([str(manifest)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"missing     {chunks[0]}",
        f"changed     {chunks[3]}",
    ]
    res = subprocess.run(
        [sys.executable, "-m", "repgeom.workflow.manifest", str(manifest)],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 1 and f"changed     {chunks[3]}" in res.stdout.splitlines()


def no_space(monkeypatch, after: int = 0, key: str = "hidden_state/c/") -> None:
    """Every Zarr write of a chunk of hidden states (those of the store writer's background
    thread; ``key``: of which file) after the first ``after`` fails with ENOSPC."""
    import zarr.storage._local as local

    put, calls = local._put, []

    def full(path, value, *args, **kwargs):
        if key in path.as_posix():
            calls.append(path)
            if len(calls) > after:
                raise OSError(errno.ENOSPC, "No space left on device")
        return put(path, value, *args, **kwargs)

    monkeypatch.setattr(local, "_put", full)


def test_full_disk_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    no_space(monkeypatch, after=1)
    out = tmp_path / "results" / "c.zarr"
    with pytest.raises(OSError) as err, atomic_path(out) as tmp:
        write_store(tmp)
    message = str(err.value)
    assert err.value.errno == errno.ENOSPC and "\n" not in message
    assert f"no space left on device writing {out} (" in message
    assert " free on /" in message and "free space or point results/ elsewhere" in message
    assert err.value.__cause__ is None and err.value.__suppress_context__
    assert list((tmp_path / "results").iterdir()) == []  # nothing half-written
    # the store writer alone names the store it writes
    with pytest.raises(OSError, match=f"writing {tmp_path / 'alone.zarr'} "):
        write_store(tmp_path / "alone.zarr")
    no_space(monkeypatch, key="/zarr.json")  # metadata, in the caller's thread
    with pytest.raises(OSError, match=f"writing {tmp_path / 'meta.zarr'} "):
        write_store(tmp_path / "meta.zarr")


def test_full_disk_in_extraction_leaves_nothing(tiny_model, windows, tmp_path, monkeypatch):
    from repgeom.activations.extraction import extract

    no_space(monkeypatch, after=2)  # the third layer's chunk, in the writer's thread
    w = T.Windows(windows.ids[:40], windows.lengths[:40])
    out = tmp_path / "act" / "a.zarr"
    with pytest.raises(OSError, match=f"^\\[Errno 28\\] no space left on device writing {out} "):
        extract(tiny_model, w, out, batch_size=8, attrs={"model": "m"})
    assert list((tmp_path / "act").iterdir()) == []


JOB = """
import errno, sys
from repgeom.io import atomic_path
from repgeom.runtime import log_to
log_to(sys.argv[1])
print("started")
with atomic_path(sys.argv[2]) as tmp:
    tmp.write_text("half")
    raise OSError(errno.ENOSPC, "No space left on device")
"""


def test_a_job_on_a_full_disk_prints_one_line(tmp_path):
    """A job (log_to: stderr goes to its log) prints the one line, not a traceback, in its log
    and on the terminal, and exits with 1."""
    log, out = tmp_path / "job.log", tmp_path / "out.txt"
    res = subprocess.run(
        [sys.executable, "-c", JOB, str(log), str(out)], capture_output=True, text=True
    )
    line = f"repgeom: no space left on device writing {out} ("
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1 and res.stderr.startswith(line), res.stderr
    assert log.read_text().splitlines()[0] == "started"
    assert log.read_text().splitlines()[1:] == res.stderr.splitlines()
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["job.log"]


TOKENS_JOB = """
import runpy, sys
from types import SimpleNamespace


class Files(dict):
    __getattr__ = dict.__getitem__


work = sys.argv[1]
snakemake = SimpleNamespace(
    log=[f"{work}/tokens.log"],
    params=SimpleNamespace(
        source={"path": f"{work}/tok", "revision": None},
        tokenizer={"window": 64, "bos": "prepend"},
        corpus={"kind": "text", "windows": "stream"},
    ),
    input=Files(train=f"{work}/train.jsonl", eval=f"{work}/eval.jsonl", stats=f"{work}/stats.json"),
    wildcards=SimpleNamespace(corpus="tiny", tokenizer="bpe"),
    output=[f"{work}/t.zarr"],
)
runpy.run_path(sys.argv[2], init_globals={"snakemake": snakemake})
"""


def test_short_corpus_names_corpus_tokenizer_tokens_and_window(tokenizer, tmp_path):
    """The tokens job (scripts/tokens.py, run as Snakemake runs it) on a corpus whose eval
    split is shorter than one window."""
    from tests.workflow import ROOT

    tokenizer.save_pretrained(tmp_path / "tok")
    (tmp_path / "train.jsonl").write_text(json.dumps({"text": "def f(x): return x " * 40}) + "\n")
    (tmp_path / "eval.jsonl").write_text(json.dumps({"text": "x = 1"}) + "\n")
    (tmp_path / "stats.json").write_text(json.dumps({"sha256": "0" * 64}))
    res = subprocess.run(
        [sys.executable, "-c", TOKENS_JOB, str(tmp_path), str(ROOT / "scripts" / "tokens.py")],
        capture_output=True,
        text=True,
    )
    n = len(tokenizer("x = 1", add_special_tokens=False)["input_ids"]) + 1
    assert res.returncode == 1, res.stderr
    message = (
        f"repgeom: corpus 'tiny' is shorter than one token window: its eval split has {n} "
        "tokens with tokenizer 'bpe' (separators included), one window of 64 needs 63 tokens "
        "+ BOS; add documents to corpora.tiny"
    )
    assert res.stderr.startswith(message), res.stderr
    assert "lower tokenizers.bpe.window" in res.stderr and "Traceback" not in res.stderr
    assert message in (tmp_path / "tokens.log").read_text()
    assert not (tmp_path / "t.zarr").exists()


@pytest.mark.slow
def test_workflow_manifest_covers_every_store_chunk_by_chunk(run_dir, tmp_path):
    """The test config's run (kept stores) lists every file of every activation store, each
    with the extract rule, and the check reports a changed chunk of a copy by its path."""
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir / "results", copy / "results")
    manifest = copy / "results" / "manifest.tsv"
    rows = {line.split("\t")[0]: line.split("\t") for line in manifest.read_text().splitlines()[1:]}
    stores = sorted((copy / "results" / "activations").glob("*/*/*.zarr"))
    assert len(stores) >= 4
    for store in stores:
        files = [f for f in store.rglob("*") if f.is_file() and f.name != ".snakemake_timestamp"]
        paths = {f.relative_to(copy).as_posix() for f in files}
        assert paths <= set(rows), store
        assert {rows[p][3] for p in paths} == {"extract"}
        assert any("/hidden_state/c/" in p for p in paths)
    assert not verify(manifest)
    chunk = next(p for p in sorted(rows) if "/hidden_state/c/" in p)
    corrupt(copy / chunk)
    res = subprocess.run(
        [sys.executable, "-m", "repgeom.workflow.manifest", str(manifest)],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 1 and res.stdout.splitlines() == [f"changed     {chunk}"]
    with pytest.raises(CorruptStoreError, match=chunk.split(".zarr/")[1]):
        ActivationStore(copy / chunk.split("/hidden_state/")[0]).read_rows(
            int(chunk.split("/")[-3]), 0, 10**9
        )


def test_the_heads_features_read_a_corrupt_chunk_by_name(tmp_path):
    """The softmax-bottleneck heads read activation stores through the same checked reader."""
    from repgeom.bottleneck.features import next_token_blocks

    path = tmp_path / "c.zarr"
    x = write_store(path)
    blocks = list(next_token_blocks(path, 1, block=1000))
    assert sum(len(f) for f, _ in blocks) == N - 30  # every row but each sequence's last
    np.testing.assert_array_equal(blocks[0][0][:5], x[1, :5].astype(np.float16))
    corrupt(path / "hidden_state" / "c" / "1" / "1" / "0")
    with pytest.raises(CorruptStoreError, match=f"{path}: chunk hidden_state/c/1/1/0"):
        list(next_token_blocks(path, 1, block=1000))
