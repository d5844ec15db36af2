"""The results manifest: one row per final artifact, and a check of a results tree against it.

The workflow writes ``results/manifest.tsv`` with paths as its jobs name them (``results/…``),
i.e. relative to the folder that holds ``results/``: the manifest's own folder's parent. The
check resolves them there, so it works from any directory:
python -m repgeom.workflow.manifest /path/to/results/manifest.tsv
(exit status 1 and one line per missing, changed or unexpected file when they differ).
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path

from repgeom.io import atomic_path
from repgeom.provenance import file_sha256

COLUMNS = ("path", "sha256", "size", "rule", "config_hash", "code_hash")


def manifest_root(manifest: str | Path) -> Path:
    """The folder a manifest's paths are relative to: the parent of the folder holding it
    (``results/manifest.tsv`` lists ``results/…``), symbolic links left as they are."""
    return Path(manifest).absolute().parent.parent


def write_manifest(
    rows: list[tuple[str, str, str, str]], manifest: str | Path, root: str | Path | None = None
) -> None:
    """Write the manifest from (path, rule, config hash, code hash); paths relative to root
    (by default :func:`manifest_root`)."""
    root = manifest_root(manifest) if root is None else Path(root)
    with atomic_path(manifest) as tmp, open(tmp, "w", newline="") as f:
        out = csv.writer(f, delimiter="\t", lineterminator="\n")
        out.writerow(COLUMNS)
        for path, rule, config_hash, code_hash in sorted(rows):
            full = root / path
            out.writerow(
                [path, file_sha256(full), full.stat().st_size, rule, config_hash, code_hash]
            )


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


def verify(manifest: str | Path, root: str | Path | None = None) -> Differences:
    """Compare files with the manifest: missing, changed (size or sha256), and unexpected files
    in the directories that hold listed artifacts (not their subdirectories). Paths are relative
    to ``root``, by default :func:`manifest_root`, whatever the working directory."""
    root = manifest_root(manifest) if root is None else Path(root)
    with open(manifest, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    listed = {r["path"]: r for r in rows}
    missing, changed = [], []
    for path, row in listed.items():
        full = root / path
        if not full.is_file():
            missing.append(path)
        elif full.stat().st_size != int(row["size"]) or file_sha256(full) != row["sha256"]:
            changed.append(path)
    folders = {(root / p).parent for p in listed}
    itself = Path(manifest).resolve()
    present = {
        str(f.relative_to(root))
        for d in folders
        if d.is_dir()
        for f in d.iterdir()
        if f.is_file() and f.resolve() != itself
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
        print(f"all {sum(1 for _ in open(args.manifest)) - 1} artifacts match {args.manifest}")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
