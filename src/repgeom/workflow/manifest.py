"""The results manifest: one row per final artifact, and a check of a results tree against it.

A directory listed (an activation store) is listed file by file: every chunk and metadata file
of the store with its sha256, so that a changed chunk is reported by its path
(``changed     results/activations/m/step/c.zarr/hidden_state/c/0/3/0``). The digests are
computed when the manifest is written, from the files on disk, as for every other artifact:
the store format stays plain Zarr and extraction pays nothing for them, and the chunks' own
crc32c (checked by every read of the metric jobs, which run before the manifest) covers the
time between a store's writing and the manifest.

The workflow writes ``results/manifest.tsv`` with paths as its jobs name them (``results/…``),
i.e. relative to the folder that holds ``results/``: the manifest's own folder's parent. The
check resolves them there, so it works from any directory:
python -m repgeom.workflow.manifest /path/to/results/manifest.tsv
(exit status 1 and one line per missing, changed or unexpected file when they differ).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from repgeom.io import atomic_path
from repgeom.provenance import file_sha256

COLUMNS = ("path", "sha256", "size", "rule", "config_hash", "code_hash")
# Snakemake's mark of when it finished a directory output: bookkeeping, not part of the store
IGNORED = frozenset({".snakemake_timestamp"})


def manifest_root(manifest: str | Path) -> Path:
    """The folder a manifest's paths are relative to: the parent of the folder holding it
    (``results/manifest.tsv`` lists ``results/…``), symbolic links left as they are."""
    return Path(manifest).absolute().parent.parent


def hash_threads() -> int:
    """Files hashed at once (hashlib releases the GIL): the CPUs this process may use, ≤ 8."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    return max(1, min(8, n))


def sha256s(paths: Iterable[Path], threads: int | None = None) -> list[str]:
    """sha256 of each file, in order, hashed on ``threads`` threads (default
    :func:`hash_threads`)."""
    with ThreadPoolExecutor(threads or hash_threads()) as pool:
        return list(pool.map(file_sha256, paths))


def expand(root: Path, path: str) -> list[str]:
    """A listed path: a file itself; a directory (a Zarr store) every file under it, sorted,
    as paths relative to ``root``."""
    full = root / path
    if not full.is_dir():
        return [path]
    files = sorted(f for f in full.rglob("*") if f.is_file() and f.name not in IGNORED)
    return [(Path(path) / f.relative_to(full)).as_posix() for f in files]


def write_manifest(
    rows: list[tuple[str, str, str, str]],
    manifest: str | Path,
    root: str | Path | None = None,
    threads: int | None = None,
) -> None:
    """Write the manifest from (path, rule, config hash, code hash); paths relative to root
    (by default :func:`manifest_root`). A directory (an activation store) gets one row per file
    under it, chunk by chunk, each with the directory's rule and hashes."""
    root = manifest_root(manifest) if root is None else Path(root)
    listed = sorted(
        (file, rule, config_hash, code_hash)
        for path, rule, config_hash, code_hash in rows
        for file in expand(root, path)
    )
    digests = sha256s((root / r[0] for r in listed), threads)
    with atomic_path(manifest) as tmp, open(tmp, "w", newline="") as f:
        out = csv.writer(f, delimiter="\t", lineterminator="\n")
        out.writerow(COLUMNS)
        for (path, rule, config_hash, code_hash), digest in zip(listed, digests, strict=True):
            size = (root / path).stat().st_size
            out.writerow([path, digest, size, rule, config_hash, code_hash])


@dataclass
class Differences:
    """What differs between a results tree and its manifest."""

    missing: list[str]
    changed: list[str]
    unexpected: list[str]

    def __bool__(self) -> bool:
        return bool(self.missing or self.changed or self.unexpected)

    def lines(self) -> list[str]:
        return (
            [f"missing     {p}" for p in self.missing]
            + [f"changed     {p}" for p in self.changed]
            + [f"unexpected  {p}" for p in self.unexpected]
        )


def verify(
    manifest: str | Path, root: str | Path | None = None, threads: int | None = None
) -> Differences:
    """Compare files with the manifest: missing, changed (size or sha256), and unexpected files
    in the directories that hold listed files (not their subdirectories) — for an activation
    store every chunk is read and hashed. Paths are relative to ``root``, by default
    :func:`manifest_root`, whatever the working directory."""
    root = manifest_root(manifest) if root is None else Path(root)
    with open(manifest, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    listed = {r["path"]: r for r in rows}
    missing, changed, to_hash = [], [], []
    for path, row in listed.items():
        full = root / path
        if not full.is_file():
            missing.append(path)
        elif full.stat().st_size != int(row["size"]):
            changed.append(path)
        else:
            to_hash.append(path)
    digests = sha256s((root / p for p in to_hash), threads)
    changed += [p for p, d in zip(to_hash, digests, strict=True) if d != listed[p]["sha256"]]
    folders = {(root / p).parent for p in listed}
    itself = Path(manifest).resolve()
    present = {
        str(f.relative_to(root))
        for d in folders
        if d.is_dir()
        for f in d.iterdir()
        if f.is_file() and f.resolve() != itself and f.name not in IGNORED
    }
    unexpected = sorted(present - set(listed))
    return Differences(sorted(missing), sorted(changed), unexpected)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check a results tree against its manifest.")
    parser.add_argument("manifest", help="path of manifest.tsv, e.g. results/manifest.tsv")
    parser.add_argument(
        "--root",
        default=None,
        help="directory the manifest paths are relative to (default: the parent of the "
        "manifest's folder, where the workflow ran)",
    )
    args = parser.parse_args(argv)
    diff = verify(args.manifest, args.root)
    for line in diff.lines():
        print(line)
    if not diff:
        with open(args.manifest, newline="") as f:
            paths = [r["path"] for r in csv.DictReader(f, delimiter="\t")]
        stores = {p.split(".zarr/")[0] for p in paths if ".zarr/" in p}
        chunked = (
            f" ({sum('.zarr/' in p for p in paths)} of them the files of {len(stores)} Zarr "
            "stores, chunk by chunk)"
            if stores
            else ""
        )
        print(f"all {len(paths)} artifacts match {args.manifest}{chunked}")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
