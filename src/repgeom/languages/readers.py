"""Readers of the per-language study's files: FLORES, minimal-pair tables, UTF-8 lines.

FLORES layouts :func:`find_flores` looks for (first existing path wins, in this order):

- FLORES-200 tarball (Meta, 2022): ``{root}/{split}/{code}.{split}``, e.g. ``dev/eng_Latn.dev``;
- FLORES+ release zip (openlanguagedata/flores on GitHub): ``{root}/{split}/{split}.{code}``,
  e.g. ``dev/dev.eng_Latn``;
- plain text: ``{root}/{split}/{code}``, one sentence a line;
- FLORES+ on the Hugging Face hub (``openlanguagedata/flores_plus``):
  ``{root}/{split}/{code}.parquet`` with a ``text`` column (an ``id`` column, when present, fixes
  the order). Reading parquet needs ``pyarrow``, which is not a dependency of repgeom: without it
  a parquet file raises ImportError saying so (convert it to one of the text layouts instead).

Text files hold one sentence per line (UTF-8); a final newline is ignored, ``\\r\\n`` is read as a
line break, and no other character (not U+2028, not U+0085) splits a sentence.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

FLORES_LAYOUTS: tuple[tuple[str, str], ...] = (
    ("FLORES-200", "{split}/{code}.{split}"),
    ("FLORES+ release", "{split}/{split}.{code}"),
    ("plain text", "{split}/{code}"),
    ("FLORES+ parquet", "{split}/{code}.parquet"),
)
PARQUET_TEXT_COLUMNS = ("text", "sentence")


def flores_candidates(root: Path, split: str, code: str) -> list[Path]:
    """Every path :func:`find_flores` looks at for one language, in order of preference."""
    return [Path(root) / pattern.format(split=split, code=code) for _, pattern in FLORES_LAYOUTS]


def find_flores(root: str | Path, split: str, code: str) -> Path:
    """The file of one FLORES language: the first of :func:`flores_candidates` that exists.

    Raises FileNotFoundError naming the code and every path looked at.
    """
    candidates = flores_candidates(Path(root), split, code)
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        looked = "\n  ".join(str(p) for p in candidates)
        raise FileNotFoundError(
            f"FLORES language {code!r} ({split}) not found under {root}; looked for:\n  "
            f"{looked}\nCheck the code (e.g. 'eng_Latn'), the split and the FLORES root directory."
        )
    return found


def read_flores_file(path: Path) -> list[str]:
    """Sentences of one FLORES file of any layout :func:`find_flores` finds."""
    path = Path(path)
    return _read_parquet_text(path) if path.suffix == ".parquet" else read_lines(path)


def read_utf8(path: Path) -> str:
    """The text of a UTF-8 file as text mode reads it (``\\r\\n`` and ``\\r`` become ``\\n``),
    without a leading byte-order mark; an invalid byte raises ValueError naming the file and
    its offset."""
    from repgeom.data.corpus import DecodingError, decode_text

    try:
        text, _ = decode_text(Path(path).read_bytes(), str(path), "utf-8", "strict")
    except DecodingError as err:
        raise DecodingError(
            f"{err}; the languages study reads its files as UTF-8 (FLORES and BLiMP are): "
            "convert this one, e.g. iconv -f LATIN1 -t UTF-8"
        ) from None
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def read_lines(path: Path) -> list[str]:
    """One sentence per line of a UTF-8 file (final newline ignored, ``\\r\\n`` accepted)."""
    text = read_utf8(path)
    if text.endswith("\n"):
        text = text[:-1]
    if not text:
        raise ValueError(f"{path} holds no sentences")
    return text.split("\n")


def _read_parquet_text(path: Path) -> list[str]:
    try:
        import pyarrow.parquet as pq
    except ImportError as err:
        raise ImportError(
            f"{path} is parquet (FLORES+ from the Hugging Face hub) and reading it needs pyarrow, "
            "which is not installed; install pyarrow or convert the file to one sentence a line"
        ) from err
    table = pq.read_table(path)
    names = table.column_names
    column = next((c for c in PARQUET_TEXT_COLUMNS if c in names), None)
    if column is None:
        raise ValueError(
            f"{path} has none of the text columns {PARQUET_TEXT_COLUMNS}; columns found: {names}"
        )
    sentences = [str(s) for s in table.column(column).to_pylist()]
    if "id" in names:
        ids = np.asarray(table.column("id").to_pylist())
        sentences = [sentences[i] for i in np.argsort(ids, kind="stable")]
    if not sentences:
        raise ValueError(f"{path} holds no sentences")
    return sentences


def read_minimal_pairs(
    path: Path, good_column: str, bad_column: str
) -> tuple[list[str], list[str]]:
    """Aligned (grammatical, ungrammatical) sentences from a CSV, TSV or JSON-lines file.

    The delimiter comes from the extension (``.csv`` comma, ``.tsv``/``.tab`` tab) or is sniffed
    among ``, \\t ; |``; ``.jsonl`` files (e.g. BLiMP, columns ``sentence_good`` and
    ``sentence_bad``) hold one JSON object a line. An empty cell raises ValueError.
    """
    path = Path(path)
    if path.suffix.lower() == ".jsonl":
        rows = [json.loads(line) for line in read_lines(path) if line.strip()]
        found = sorted({k for r in rows for k in r}) if rows else []
    else:
        text = read_utf8(path)
        if not text.strip():
            raise ValueError(f"{path} is empty; expected a header row and minimal pairs")
        delimiter = _delimiter(path, text)
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
        found = list(reader.fieldnames or [])
        rows = list(reader)
    missing = [c for c in (good_column, bad_column) if c not in found]
    if missing:
        raise ValueError(f"{path}: column(s) {missing} not found; columns found: {found}")
    if not rows:
        raise ValueError(f"{path} has a header but no minimal pairs")
    good, bad = [], []
    for i, row in enumerate(rows, start=1):
        g, b = row.get(good_column), row.get(bad_column)
        if g is None or b is None or not str(g).strip() or not str(b).strip():
            raise ValueError(
                f"{path}: row {i} has an empty {good_column!r} or {bad_column!r} cell; "
                "remove the row or fill it in"
            )
        good.append(str(g))
        bad.append(str(b))
    return good, bad


def _delimiter(path: Path, text: str) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return ","
    if suffix in (".tsv", ".tab"):
        return "\t"
    try:
        return csv.Sniffer().sniff(text[:65536], delimiters=",\t;|").delimiter
    except csv.Error as err:
        raise ValueError(f"could not tell the delimiter of {path}; name it .csv or .tsv") from err


def read_scores(path: str | Path) -> dict[str, float]:
    """Per-language scores from a CSV/TSV with columns ``language`` and ``score``."""
    import csv

    path = Path(path)
    text = path.read_text(encoding="utf-8-sig")
    delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    found = list(reader.fieldnames or [])
    if "language" not in found or "score" not in found:
        raise ValueError(f"{path}: needs columns 'language' and 'score'; columns found: {found}")
    scores: dict[str, float] = {}
    for i, row in enumerate(reader, start=2):
        lang = (row["language"] or "").strip()
        if not lang:
            raise ValueError(f"{path}: line {i} has no language")
        if lang in scores:
            raise ValueError(f"{path}: language {lang!r} is listed twice (line {i})")
        try:
            value = float(row["score"])
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: line {i}: score {row['score']!r} is not a number") from err
        if not math.isfinite(value):
            raise ValueError(f"{path}: line {i}: score {value} is not finite")
        scores[lang] = value
    if not scores:
        raise ValueError(f"{path} holds no scores")
    return scores
