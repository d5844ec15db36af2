"""Corpora: stdlib docstrings, local text files (enwik8 included), and the train/eval split."""

from __future__ import annotations

import ast
import codecs
import gzip
import hashlib
import json
import logging
import platform
import sysconfig
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
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


REPLACEMENT = "\ufffd"


class DecodingError(ValueError):
    """A file's bytes are not valid in the encoding it is read with."""


_REPLACED: ContextVar[list[int]] = ContextVar("repgeom_replaced_characters")


def _count_replacement(err: UnicodeError) -> tuple[str, int]:
    """Decoding error handler: what ``errors="replace"`` does (one U+FFFD for each undecodable
    sequence, resuming after it), counted in the caller's counter."""
    if not isinstance(err, UnicodeDecodeError):
        raise err
    _REPLACED.get()[0] += 1
    return REPLACEMENT, err.end


COUNTING_REPLACE = "repgeom.count_replace"
codecs.register_error(COUNTING_REPLACE, _count_replacement)


def decode_text(data: bytes, source: str, encoding: str, errors: str) -> tuple[str, int]:
    """Text of ``data`` read from ``source`` and how many characters decoding replaced.

    ``errors="strict"``: an undecodable byte raises DecodingError naming the source and the
    byte offset. ``errors="replace"``: each undecodable sequence becomes one U+FFFD and
    is counted (U+FFFD already in the text is not).
    """
    if errors not in ("strict", "replace"):
        raise ValueError(f"errors must be 'strict' or 'replace', got {errors!r}")
    if errors == "strict":
        try:
            return data.decode(encoding), 0
        except UnicodeDecodeError as err:
            raise DecodingError(
                f"{source}: byte {err.start} (0x{data[err.start]:02x}) is not valid {encoding}"
                f" ({err.reason})"
            ) from None
    token = _REPLACED.set([0])
    try:
        text = data.decode(encoding, COUNTING_REPLACE)
        return text, _REPLACED.get()[0]
    finally:
        _REPLACED.reset(token)


def read_text_file(path: str | Path, encoding: str, errors: str) -> tuple[str, int]:
    """Text of a plain, .gz or .zip file (every member of a zip, in name order) and how many
    characters decoding replaced (see :func:`decode_text`)."""
    path = Path(path)
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            parts = [
                decode_text(zf.read(n), f"{path} (member {n})", encoding, errors)
                for n in sorted(zf.namelist())
                if not n.endswith("/")
            ]
        return "".join(t for t, _ in parts), sum(n for _, n in parts)
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as f:
            return decode_text(f.read(), f"{path} (decompressed)", encoding, errors)
    return decode_text(path.read_bytes(), str(path), encoding, errors)


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
    texts: Iterable[str], split_by: str, n_chunks: int | None, chunk_chars: int, seed: int
) -> list[str]:
    """Documents of texts (one per file): split by paragraph/line/file, or sampled as chunks."""
    texts = list(texts)
    if n_chunks:
        return sample_chunks("\n".join(texts), n_chunks, chunk_chars, seed)
    return [d for t in texts for d in split_documents(t, split_by)]


def corpus_origin(name: str, cfg: Mapping[str, Any]) -> str:
    """How messages name a corpus: its config key and, for a text corpus, its path or glob."""
    where = f" (path {cfg['path']!r})" if cfg["kind"] == "text" else ""
    return f"config key 'corpora.{name}'{where}"


def corpus_documents(
    name: str, cfg: Mapping[str, Any], paths: Sequence[str | Path]
) -> tuple[list[str], dict[str, Any]]:
    """The documents of a python_docs or text corpus as its config says (decoding, splitting
    or chunks, ``min_chars``, a seeded ``max_documents`` sample) and the attributes its stats
    record. A text corpus's files are decoded with its ``encoding`` and ``errors``; characters
    replaced are counted and logged as a warning. ValueError naming the corpus's config key
    and files when no file or no document is left."""
    origin = corpus_origin(name, cfg)
    attrs: dict[str, Any] = {"name": name, "kind": cfg["kind"]}
    if cfg["kind"] == "python_docs":
        docs = python_docs(min_chars=cfg["min_chars"])
        attrs.update(python_docs_attrs())
    else:
        if not paths:
            raise ValueError(f"{origin}: no file matches; put the file there or change the path")
        texts: list[str] = []
        replaced = 0
        for path in paths:
            try:
                text, n = read_text_file(path, cfg["encoding"], cfg["errors"])
            except DecodingError as err:
                raise DecodingError(
                    f"{origin}: {err}; if the file is in another encoding, set `encoding:` on "
                    f"the corpus (e.g. encoding: latin-1), or set `errors: replace` to read each"
                    " undecodable sequence as U+FFFD (counted in the corpus's stats.json)"
                ) from None
            texts.append(text)
            replaced += n
        if replaced:
            logging.getLogger(__name__).warning(
                "%s: %d undecodable byte sequence(s) read as U+FFFD (errors: replace, "
                "encoding: %s)",
                origin,
                replaced,
                cfg["encoding"],
            )
        try:
            docs = text_documents(
                texts, cfg["split_by"], cfg["n_chunks"], cfg["chunk_chars"], cfg["seed"]
            )
        except ValueError as err:  # fewer characters than one chunk
            raise ValueError(f"{origin}: {err}") from None
        docs = [d for d in docs if len(d) >= cfg["min_chars"]]
        attrs.update(
            source_files=[str(p) for p in paths],
            encoding=cfg["encoding"],
            errors=cfg["errors"],
            replaced_characters=replaced,
        )
    if not docs:
        files = ", ".join(attrs.get("source_files", [])) or attrs.get("stdlib", "")
        raise ValueError(
            f"{origin}: no documents (read from {files}; min_chars={cfg['min_chars']}); "
            "give it text, or lower min_chars"
        )
    if cfg["max_documents"] and len(docs) > cfg["max_documents"]:
        rng = np.random.default_rng(cfg["seed"])
        keep = np.sort(rng.choice(len(docs), cfg["max_documents"], replace=False))
        docs = [docs[i] for i in keep]
    return docs, attrs


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
    docs: list[str], out_dir: str | Path, eval_fraction: float, attrs: dict[str, Any], origin: str
) -> dict[str, Any]:
    """Write train.jsonl, eval.jsonl and stats.json (nothing when a split would be empty,
    ValueError starting with ``origin``, e.g. :func:`corpus_origin`); returns the stats."""
    from repgeom.io import atomic_path, write_json

    if not docs:
        raise ValueError(f"{origin}: the corpus has no documents; give it text")
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
                f"{origin}: the {name} split is empty ({len(docs)} documents, "
                f"eval_fraction={eval_fraction}); change eval_fraction or add documents"
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
