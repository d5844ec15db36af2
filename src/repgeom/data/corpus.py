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
    """A file's bytes are not valid in the encoding it is read with, or hold a NUL. ``offset``:
    the byte offset where decoding failed (None when not known); ``nul``: the file holds a NUL;
    ``suggestions``: encodings charset-normalizer reads the file as, most likely first."""

    offset: int | None = None
    nul: bool = False
    suggestions: tuple[str, ...] = ()


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
            exc = DecodingError(
                f"{source}: byte {err.start} (0x{data[err.start]:02x}) is not valid {encoding}"
                f" ({err.reason})"
            )
            exc.offset = err.start
            raise exc from None
    token = _REPLACED.set([0])
    try:
        text = data.decode(encoding, COUNTING_REPLACE)
        return text, _REPLACED.get()[0]
    finally:
        _REPLACED.reset(token)


# byte-order marks, UTF-32 before UTF-16 (FF FE 00 00 starts with FF FE): (mark, the codec that
# reads the bytes and drops the mark, the encoding the mark names)
BYTE_ORDER_MARKS: tuple[tuple[bytes, str, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32", "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32", "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8-sig", "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16", "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16", "utf-16-be"),
)


def byte_order_mark(data: bytes) -> tuple[str, str] | None:
    """(codec that reads ``data`` and drops the mark, encoding the mark names) when ``data``
    starts with a UTF-8, UTF-16 or UTF-32 byte-order mark, else None."""
    for mark, codec, name in BYTE_ORDER_MARKS:
        if data.startswith(mark):
            return codec, name
    return None


def universal_newlines(text: str) -> str:
    """``text`` with ``\\r\\n`` and lone ``\\r`` read as ``\\n`` (as Python's text mode reads)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


SNIFF_BYTES = 1 << 16  # how much of a file charset-normalizer judges


def suggest_encodings(
    data: bytes, around: int = 0, tried: str | None = None, limit: int = 3, nul: bool = False
) -> tuple[str, ...]:
    """Encodings charset-normalizer reads ``data`` as, most likely first: at most ``limit``,
    judged on 64 KiB around byte ``around``, without ``tried`` (the codec that failed) and,
    with ``nul``, without those that read a NUL there too."""
    from charset_normalizer import from_bytes

    start = max(0, around - SNIFF_BYTES // 2) & ~3  # whole UTF-16/32 code units
    window = data[start : start + SNIFF_BYTES]
    failed = codecs.lookup(tried).name if tried else None
    names: list[str] = []
    for match in from_bytes(window):
        name = match.encoding.replace("_", "-")
        try:
            if name in names or codecs.lookup(name).name == failed:
                continue
        except LookupError:
            continue
        if nul and "\x00" in window.decode(name, "ignore"):
            continue
        names.append(name)
        if len(names) == limit:
            break
    return tuple(names)


def decode_corpus_text(
    data: bytes, source: str, encoding: str, errors: str
) -> tuple[str, int, str | None]:
    """Text of a file's bytes as a text corpus reads them, how many characters were replaced,
    and the encoding a byte-order mark named (None without one).

    A byte-order mark (UTF-8, UTF-16 or UTF-32) decides the encoding, whatever ``encoding``
    says, and is dropped. Decoding is :func:`decode_text`'s. A NUL is refused as an undecodable
    byte is: ``errors="strict"`` raises DecodingError naming the source and the byte offset
    (the character offset in UTF-16/32; a NUL byte before any undecodable one is named first),
    ``errors="replace"`` reads it as U+FFFD, counted. A DecodingError carries the encodings
    charset-normalizer reads the bytes as. Universal newlines: ``\\r\\n`` and ``\\r``
    become ``\\n``."""
    mark = byte_order_mark(data)
    codec, named = mark if mark else (encoding, None)
    wide = codecs.lookup(codec).name.startswith(("utf-16", "utf-32"))

    def refuse_nul(where: str, byte: int | None) -> DecodingError:
        err = DecodingError(f"{source}: {where} is a NUL, which text does not hold")
        err.offset, err.nul = byte, True
        err.suggestions = suggest_encodings(data, byte or 0, tried=codec, nul=True)
        return err

    # outside UTF-16/32, byte 0x00 is U+0000 in every codec, before anything else decodes
    byte = -1 if wide or errors != "strict" else data.find(b"\x00")
    if byte >= 0:
        raise refuse_nul(f"byte {byte} (0x00)", byte)
    try:
        text, replaced = decode_text(data, source, codec, errors)
    except DecodingError as err:
        err.suggestions = suggest_encodings(data, err.offset or 0, tried=codec)
        raise
    if "\x00" in text:
        if errors == "strict":
            raise refuse_nul(f"character {text.index(chr(0))} (U+0000)", None)
        replaced += text.count("\x00")
        text = text.replace("\x00", REPLACEMENT)
    return universal_newlines(text), replaced, named


def _text_members(path: Path) -> Iterator[tuple[str, bytes]]:
    """(how messages name it, bytes) of a plain file, a .gz file's content, or each member of
    a .zip file in name order."""
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            for n in sorted(zf.namelist()):
                if not n.endswith("/"):
                    yield f"{path} (member {n})", zf.read(n)
    elif path.suffix == ".gz":
        with gzip.open(path, "rb") as f:
            yield f"{path} (decompressed)", f.read()
    else:
        yield str(path), path.read_bytes()


def _read_text(path: str | Path, encoding: str, errors: str) -> tuple[str, int, dict[str, str]]:
    """:func:`read_text_file`, and the encodings byte-order marks named, by member."""
    text, replaced, marks = [], 0, {}
    for source, data in _text_members(Path(path)):
        part, n, named = decode_corpus_text(data, source, encoding, errors)
        text.append(part)
        replaced += n
        if named:
            marks[source] = named
    return "".join(text), replaced, marks


def read_text_file(path: str | Path, encoding: str, errors: str) -> tuple[str, int]:
    """Text of a plain, .gz or .zip file (every member of a zip, in name order) and how many
    characters were replaced, each part read by :func:`decode_corpus_text` (byte-order marks
    honoured, NUL refused, universal newlines)."""
    text, replaced, _ = _read_text(path, encoding, errors)
    return text, replaced


class RecordError(ValueError):
    """A record of a JSON-lines or Parquet file is not one a text corpus can read."""


def corpus_file_format(path: str | Path) -> str:
    """How a text corpus reads a file, by its suffix: 'jsonl' (.jsonl, .jsonl.gz), 'parquet'
    (.parquet) or 'text' (anything else: plain, .gz, .zip)."""
    name = Path(path).name.lower()
    if name.endswith((".jsonl", ".jsonl.gz")):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    return "text"


def _json_type(value: Any) -> str:
    """JSON's name for the type of a parsed value."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    names = {dict: "an object", list: "an array", str: "a string", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _record_text(value: str, where: str, errors: str) -> tuple[str, int]:
    """A record's text with universal newlines; a NUL refused (or replaced) as in a file."""
    if "\x00" not in value:
        return universal_newlines(value), 0
    if errors == "strict":
        err = DecodingError(
            f"{where}: character {value.index(chr(0))} of the text is a NUL (U+0000), which "
            "text does not hold"
        )
        err.nul = True
        raise err
    return universal_newlines(value.replace("\x00", REPLACEMENT)), value.count("\x00")


def read_jsonl_records(
    path: str | Path, field: str, encoding: str, errors: str
) -> tuple[list[str], int, dict[str, str]]:
    """The ``field`` of each record of a JSON-lines file (.jsonl, or .jsonl.gz), one document
    each, how many characters were replaced and the encoding a byte-order mark named (by
    source). The bytes are read as :func:`decode_corpus_text` reads them; blank lines are
    skipped. RecordError naming the file and line for a line that is not JSON, not an object,
    lacks the field, or whose field is not a string."""
    path = Path(path)
    [(source, data)] = _text_members(path)  # a plain file, or a .gz file's content
    text, replaced, named = decode_corpus_text(data, source, encoding, errors)
    docs: list[str] = []
    use = "set `field:` on the corpus to the field that holds the text"
    for number, line in enumerate(text.split("\n"), 1):  # not splitlines: U+2028 is JSON text
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise RecordError(
                f"{where}: not JSON ({err.msg} at column {err.colno}); a JSON-lines file holds "
                "one JSON object a line"
            ) from None
        if not isinstance(record, dict):
            raise RecordError(
                f"{where}: {_json_type(record)}, not a JSON object; a JSON-lines file holds one "
                f"object a line, whose field {field!r} is the document's text"
            )
        if field not in record:
            fields = ", ".join(map(repr, list(record)[:20])) or "none"
            raise RecordError(
                f"{where}: the record has no field {field!r} (its fields: {fields}); {use}"
            )
        value = record[field]
        if not isinstance(value, str):
            raise RecordError(
                f"{where}: field {field!r} is {_json_type(value)}, not a string; {use}, or "
                "leave the record out"
            )
        doc, n = _record_text(value, where, errors)
        docs.append(doc)
        replaced += n
    return docs, replaced, ({source: named} if named else {})


def read_parquet_records(
    path: str | Path, field: str, errors: str = "strict"
) -> tuple[list[str], int]:
    """The column ``field`` of a Parquet file, one document a row (read with pyarrow), and how
    many characters were replaced. RecordError naming the file for a missing column (with the
    columns present), a column that is not of strings, or a null row."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as err:
        raise RecordError(f"{path}: not a Parquet file pyarrow reads ({err})") from None
    schema = pf.schema_arrow
    use = "set `field:` on the corpus to the column that holds the text"
    if field not in schema.names:
        raise RecordError(
            f"{path}: no column {field!r} (columns: {', '.join(map(repr, schema.names))}); {use}"
        )
    kind = schema.field(field).type
    strings = (pa.types.is_string, pa.types.is_large_string)
    strings += (getattr(pa.types, "is_string_view", lambda t: False),)
    if not any(test(kind) for test in strings):
        raise RecordError(f"{path}: column {field!r} holds {kind}, not strings; {use}")
    docs: list[str] = []
    replaced = 0
    for batch in pf.iter_batches(columns=[field]):
        for value in batch.column(0).to_pylist():
            where = f"{path}, row {len(docs)} (counting from 0)"
            if value is None:
                raise RecordError(
                    f"{where}: column {field!r} is null; give every row text, or leave the row out"
                )
            doc, n = _record_text(value, where, errors)
            docs.append(doc)
            replaced += n
    return docs, replaced


def decoding_advice(err: DecodingError) -> str:
    """What to do about a file that does not decode or holds a NUL, from the evidence."""
    replace = (
        "or set `errors: replace` to read each undecodable sequence (or NUL) as U+FFFD "
        "(counted in the corpus's stats.json)"
    )
    names = list(err.suggestions)
    if names:
        also = f" (or {', '.join(names[1:])})" if names[1:] else ""
        return (
            f"charset-normalizer reads the file as {names[0]}{also}: if it is in "
            f"{'one of these' if also else 'that encoding'}, set `encoding:` on the corpus "
            f"(e.g. encoding: {names[0]}), {replace}"
        )
    if err.nul:
        return f"a text corpus holds no NUL: if this is not a text file, leave it out, {replace}"
    return (
        "charset-normalizer finds no encoding that reads the file: if it is not text, leave "
        f"it out; if it is, set `encoding:` on the corpus to its encoding, {replace}"
    )


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
    texts: Iterable[str | list[str]],
    split_by: str,
    n_chunks: int | None,
    chunk_chars: int,
    seed: int,
) -> list[str]:
    """Documents of texts (one per file): split by paragraph/line/file, or sampled as chunks.
    A list (a record file's documents) is documents already: stripped, blank ones left out,
    never split; chunks are sampled from everything joined by newlines."""
    texts = [t if isinstance(t, str) else [d.strip() for d in t if d.strip()] for t in texts]
    if n_chunks:
        joined = [t if isinstance(t, str) else "\n".join(t) for t in texts]
        return sample_chunks("\n".join(joined), n_chunks, chunk_chars, seed)
    return [d for t in texts for d in (split_documents(t, split_by) if isinstance(t, str) else t)]


def corpus_origin(name: str, cfg: Mapping[str, Any]) -> str:
    """How messages name a corpus: its config key and, for a text corpus, its path or glob."""
    where = f" (path {cfg['path']!r})" if cfg["kind"] == "text" else ""
    return f"config key 'corpora.{name}'{where}"


def _read_corpus_file(
    path: str | Path, field: str, cfg: Mapping[str, Any], origin: str
) -> tuple[str | list[str], str, int, dict[str, str]]:
    """One file of a text corpus by its format: its text (or a record file's documents), the
    format, the characters replaced and the byte-order marks read; errors name ``origin``."""
    fmt = corpus_file_format(path)
    try:
        if fmt == "jsonl":
            text, n, named = read_jsonl_records(path, field, cfg["encoding"], cfg["errors"])
        elif fmt == "parquet":
            text, n = read_parquet_records(path, field, cfg["errors"])
            named = {}
        else:
            text, n, named = _read_text(path, cfg["encoding"], cfg["errors"])
    except DecodingError as err:
        raise DecodingError(f"{origin}: {err}; {decoding_advice(err)}") from None
    except RecordError as err:
        raise RecordError(f"{origin}: {err}") from None
    return text, fmt, n, named


def _text_corpus_documents(
    origin: str, cfg: Mapping[str, Any], paths: Sequence[str | Path], attrs: dict[str, Any]
) -> list[str]:
    """The documents of a text corpus's files (``min_chars`` applied, not yet sampled); its
    stats attributes go into ``attrs``."""
    if not paths:
        raise ValueError(f"{origin}: no file matches; put the file there or change the path")
    field = cfg.get("field", "text")
    texts: list[str | list[str]] = []  # a text file's text, a record file's documents
    formats: set[str] = set()
    marks: dict[str, str] = {}
    replaced = 0
    for path in paths:
        text, fmt, n, named = _read_corpus_file(path, field, cfg, origin)
        texts.append(text)
        formats.add(fmt)
        marks.update(named)
        replaced += n
    if replaced:
        logging.getLogger(__name__).warning(
            "%s: %d undecodable byte sequence(s) or NUL(s) read as U+FFFD (errors: replace, "
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
        format="+".join(sorted(formats)),  # text, jsonl, parquet, or a mix: jsonl+text
        encoding=cfg["encoding"],
        errors=cfg["errors"],
        replaced_characters=replaced,
    )
    if formats - {"text"}:
        attrs["field"] = field
    if marks:  # files read by their byte-order mark, not by `encoding`
        attrs["byte_order_marks"] = marks
    return docs


def _sample_documents(docs: list[str], max_documents: int | None, seed: int) -> list[str]:
    """A seeded sample of ``max_documents`` documents, in corpus order (all when fewer)."""
    if max_documents and len(docs) > max_documents:
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(len(docs), max_documents, replace=False))
        docs = [docs[i] for i in keep]
    return docs


def corpus_documents(
    name: str, cfg: Mapping[str, Any], paths: Sequence[str | Path]
) -> tuple[list[str], dict[str, Any]]:
    """The documents of a python_docs or text corpus as its config says (decoding, splitting
    or chunks, ``min_chars``, a seeded ``max_documents`` sample) and the attributes its stats
    record. A text corpus's text files are decoded with its ``encoding`` and ``errors``
    (:func:`decode_corpus_text`: byte-order marks honoured, NUL refused, universal newlines);
    characters replaced are counted and logged as a warning. Its JSON-lines and Parquet files
    (:func:`corpus_file_format`) give one document per record, the record's ``field``, never
    split. ValueError naming the corpus's config key and files when no file or no document is
    left; DecodingError or RecordError naming it, the file and what to do for a file it cannot
    read."""
    origin = corpus_origin(name, cfg)
    attrs: dict[str, Any] = {"name": name, "kind": cfg["kind"]}
    if cfg["kind"] == "python_docs":
        docs = python_docs(min_chars=cfg["min_chars"])
        attrs.update(python_docs_attrs())
    else:
        docs = _text_corpus_documents(origin, cfg, paths, attrs)
    if not docs:
        files = ", ".join(attrs.get("source_files", [])) or attrs.get("stdlib", "")
        raise ValueError(
            f"{origin}: no documents (read from {files}; min_chars={cfg['min_chars']}); "
            "give it text, or lower min_chars"
        )
    return _sample_documents(docs, cfg["max_documents"], cfg["seed"]), attrs


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
