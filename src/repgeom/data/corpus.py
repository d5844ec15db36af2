"""Corpora: stdlib docstrings, local text files (enwik8 included), and the train/eval split."""

from __future__ import annotations

import ast
import glob
import gzip
import hashlib
import json
import platform
import sysconfig
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

SKIP_DIRS = {"test", "tests", "site-packages", "dist-packages", "idlelib", "__pycache__"}


def stdlib_files(root: str | Path | None = None) -> list[Path]:
    """Python source files of the standard library, sorted, without tests and site-packages."""
    root = Path(root or sysconfig.get_paths()["stdlib"])
    files = []
    for path in sorted(root.rglob("*.py")):
        parts = set(path.relative_to(root).parts[:-1])
        if parts & SKIP_DIRS or path.name.startswith("test_"):
            continue
        files.append(path)
    return files


def docstrings(source: str) -> Iterator[str]:
    """Docstrings of a module and of its classes and functions, in source order."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return
    nodes = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    for node in ast.walk(tree):
        if isinstance(node, nodes):
            doc = ast.get_docstring(node, clean=True)
            if doc and doc.strip():
                yield doc.strip()


def python_docs(root: str | Path | None = None, min_chars: int = 1) -> list[str]:
    """Deduplicated docstrings of the standard library, one document each, in file order."""
    seen: set[str] = set()
    docs = []
    for path in stdlib_files(root):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for doc in docstrings(text):
            if len(doc) >= min_chars and doc not in seen:
                seen.add(doc)
                docs.append(doc)
    return docs


def python_docs_attrs() -> dict[str, Any]:
    """Where the stdlib docstring corpus came from."""
    return {
        "python_version": platform.python_version(),
        "stdlib": sysconfig.get_paths()["stdlib"],
    }


def resolve_text_paths(pattern: str) -> list[Path]:
    """Files named by a path or glob, sorted; raises if nothing matches."""
    paths = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
    if not paths:
        raise FileNotFoundError(f"no file matches {pattern!r}")
    return paths


def read_text_file(path: str | Path) -> str:
    """UTF-8 text of a plain, .gz or .zip file (every member of a zip, in name order).

    Invalid UTF-8 (enwik8 is cut mid-character at its end) is replaced, never dropped silently:
    the replacement character stays in the text.
    """
    path = Path(path)
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as f:
            data = f.read()
    elif path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            data = b"".join(zf.read(n) for n in sorted(zf.namelist()) if not n.endswith("/"))
    else:
        data = path.read_bytes()
    return data.decode("utf-8", errors="replace")


def split_documents(text: str, split_by: str) -> list[str]:
    """Cut a text into documents by 'paragraph' (blank lines), 'line' or 'file' (whole text)."""
    if split_by == "file":
        parts = [text]
    elif split_by == "line":
        parts = text.splitlines()
    elif split_by == "paragraph":
        parts = text.split("\n\n")
    else:
        raise ValueError(f"split_by must be 'paragraph', 'line' or 'file', got {split_by!r}")
    return [p.strip() for p in parts if p.strip()]


def sample_chunks(text: str, n_chunks: int, chunk_chars: int, seed: int) -> list[str]:
    """Seeded random character chunks of a text (the Shape-of-Learning enwik8 protocol)."""
    if len(text) < chunk_chars:
        raise ValueError(f"text has {len(text)} characters, fewer than chunk_chars={chunk_chars}")
    rng = np.random.default_rng(seed)
    starts = np.sort(rng.integers(0, len(text) - chunk_chars + 1, size=n_chunks))
    return [text[s : s + chunk_chars] for s in starts]


def text_documents(
    paths: Iterable[str | Path],
    split_by: str = "paragraph",
    n_chunks: int | None = None,
    chunk_chars: int = 512,
    seed: int = 0,
) -> list[str]:
    """Documents of local text files: split by paragraph/line/file, or sampled as chunks."""
    texts = [read_text_file(p) for p in paths]
    if n_chunks:
        return sample_chunks("\n".join(texts), n_chunks, chunk_chars, seed)
    return [d for t in texts for d in split_documents(t, split_by)]


def is_eval(doc: str, eval_fraction: float) -> bool:
    """Stable split: a document is eval when the sha256 of its text falls below the fraction."""
    h = int.from_bytes(hashlib.sha256(doc.encode("utf-8")).digest()[:8], "big")
    return h / 2**64 < eval_fraction


def content_sha256(docs: Iterable[str]) -> str:
    """sha256 over documents, each length-prefixed so boundaries count."""
    h = hashlib.sha256()
    for d in docs:
        b = d.encode("utf-8")
        h.update(len(b).to_bytes(8, "big"))
        h.update(b)
    return h.hexdigest()


def write_corpus(
    docs: list[str], out_dir: str | Path, eval_fraction: float, attrs: dict[str, Any]
) -> dict[str, Any]:
    """Write train.jsonl, eval.jsonl and stats.json; returns the stats."""
    from repgeom.io import atomic_path, write_json

    if not docs:
        raise ValueError("the corpus has no documents")
    out = Path(out_dir)
    splits: dict[str, list[str]] = {"train": [], "eval": []}
    for d in docs:
        splits["eval" if is_eval(d, eval_fraction) else "train"].append(d)
    stats: dict[str, Any] = dict(attrs)
    stats.update(
        sha256=content_sha256(docs),
        n_documents=len(docs),
        n_characters=sum(len(d) for d in docs),
        eval_fraction=eval_fraction,
    )
    for name, part in splits.items():
        if not part:
            raise ValueError(
                f"the {name} split is empty ({len(docs)} documents, eval_fraction={eval_fraction});"
                " change eval_fraction or add documents"
            )
    for name, part in splits.items():
        with atomic_path(out / f"{name}.jsonl") as tmp, open(tmp, "w", encoding="utf-8") as f:
            for d in part:
                f.write(json.dumps({"text": d}, ensure_ascii=False) + "\n")
        stats[f"n_{name}"] = len(part)
        stats[f"sha256_{name}"] = content_sha256(part)
    write_json(stats, out / "stats.json")
    return stats


def read_documents(path: str | Path) -> list[str]:
    """Documents of a corpus split file (train.jsonl or eval.jsonl)."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]
