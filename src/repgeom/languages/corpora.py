"""Corpora of the per-language study: FLORES readers, minimal pairs, synthetic offline defaults.

FLORES layouts understood by :func:`read_flores` (first existing path wins, in this order):

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

The synthetic defaults (:func:`transliterate`, :func:`make_minimal_pairs`) let the study run
offline; everything they produce is synthetic and is labelled so by :func:`synthetic_code`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from repgeom.workflow.paths import Paths

SPLITS = ("dev", "devtest")

FLORES_LAYOUTS: tuple[tuple[str, str], ...] = (
    ("FLORES-200", "{split}/{code}.{split}"),
    ("FLORES+ release", "{split}/{split}.{code}"),
    ("plain text", "{split}/{code}"),
    ("FLORES+ parquet", "{split}/{code}.parquet"),
)
PARQUET_TEXT_COLUMNS = ("text", "sentence")


def flores_candidates(root: Path, split: str, code: str) -> list[Path]:
    """Every path :func:`read_flores` looks at for one language, in order of preference."""
    return [Path(root) / pattern.format(split=split, code=code) for _, pattern in FLORES_LAYOUTS]


def read_flores(root: Path, split: str, codes: Sequence[str]) -> dict[str, list[str]]:
    """Sentences of each FLORES language code, aligned by index across languages.

    Raises FileNotFoundError (naming the code and every path looked at) for a missing language
    and ValueError when the languages do not all have the same number of sentences.
    """
    if split not in SPLITS:
        raise ValueError(f"FLORES split must be one of {SPLITS}, got {split!r}")
    codes = list(codes)
    if not codes:
        raise ValueError("no FLORES language codes given; list at least one, e.g. 'eng_Latn'")
    dupes = sorted({c for c in codes if codes.count(c) > 1})
    if dupes:
        raise ValueError(f"FLORES language codes repeated: {dupes}; list each code once")
    out: dict[str, list[str]] = {}
    for code in codes:
        candidates = flores_candidates(Path(root), split, code)
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            looked = "\n  ".join(str(p) for p in candidates)
            raise FileNotFoundError(
                f"FLORES language {code!r} ({split}) not found under {root}; looked for:\n  "
                f"{looked}\nCheck the code (e.g. 'eng_Latn') and the FLORES root directory."
            )
        out[code] = _read_parquet_text(path) if path.suffix == ".parquet" else read_lines(path)
    first = codes[0]
    for code in codes[1:]:
        if len(out[code]) != len(out[first]):
            raise ValueError(
                f"FLORES {split}: language {code!r} has {len(out[code])} sentences but "
                f"{first!r} has {len(out[first])}; the languages must be aligned sentence by "
                "sentence (same release and split for every language)"
            )
    return out


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


# ---------------------------------------------------------------- synthetic scripts (offline)

_LATIN = "abcdefghijklmnopqrstuvwxyz"
# Fixed letter-for-letter maps (not phonetic transcription), bijective on a-z and A-Z.
_TARGETS = {
    "Cyrl": "абцдефгхийклмнопщрстувшжыз",
    # 24 common Greek letters plus yot (ϳ) for j and koppa (ϙ) for q; final sigma is not used.
    "Grek": "αβξδεφγηιϳκλμνοπϙρστυθωχψζ",
}


def _tables(script: str) -> tuple[dict[int, str], dict[int, str]]:
    if script not in _TARGETS:
        raise ValueError(f"script must be one of {sorted(_TARGETS)}, got {script!r}")
    lower = _TARGETS[script]
    forward = {}
    for src, dst in zip(_LATIN, lower, strict=True):
        forward[src] = dst
        forward[src.upper()] = dst.upper()
    if len(set(forward.values())) != len(forward):
        raise AssertionError(f"the {script} map is not a bijection")
    fwd = {ord(k): v for k, v in forward.items()}
    inv = {ord(v): k for k, v in forward.items()}
    return fwd, inv


def transliterate(text: str, script: str) -> str:
    """Synthetic transliteration of Latin letters a–z/A–Z into ``script`` ('Cyrl' or 'Grek').

    Each Latin letter maps to one fixed letter of the target script; every other character
    passes through unchanged. Text that already contains one of the 52 target letters is refused
    (ValueError) because its inverse would be ambiguous; with that rule
    ``untransliterate(transliterate(t, s), s) == t`` for every accepted ``t``.
    """
    fwd, inv = _tables(script)
    for pos, ch in enumerate(text):
        if ord(ch) in inv:
            raise ValueError(
                f"text already contains {ch!r} (position {pos}), an output letter of the {script} "
                "map; transliterating it would not be invertible. Transliterate Latin-script text"
            )
    return text.translate(fwd)


def untransliterate(text: str, script: str) -> str:
    """Inverse of :func:`transliterate`: target letters back to Latin, the rest unchanged."""
    _, inv = _tables(script)
    return text.translate(inv)


def synthetic_code(code: str, script: str) -> str:
    """Language label of a synthetic transliteration, e.g. 'eng_Latn-synthetic-Cyrl'."""
    return f"{code}-synthetic-{script}"


def script_group(code: str) -> str:
    """Language part of a FLORES code ('srp' for 'srp_Cyrl' and 'srp_Latn-synthetic-Grek')."""
    return code.split("-", 1)[0].split("_", 1)[0]


# ------------------------------------------------------------ synthetic minimal pairs (offline)


def swap_adjacent_words(sentence: str, rng: np.random.Generator) -> str | None:
    """The sentence with one random pair of adjacent, different words swapped.

    Words are whitespace-separated tokens (punctuation stays attached to its word) and the
    result is re-joined with single spaces. A sentence with no two adjacent different words (one
    word, or scripts written without spaces) gives None.
    """
    words = sentence.split()
    candidates = [i for i in range(len(words) - 1) if words[i] != words[i + 1]]
    if not candidates:
        return None
    i = candidates[int(rng.integers(len(candidates)))]
    words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


def make_minimal_pairs(sentences: Sequence[str], seed: int) -> tuple[list[str], list[str]]:
    """Synthetic (grammatical, word-swapped) pairs, aligned; sentences with no swap are skipped.

    The grammatical side is the sentence with its whitespace normalised to single spaces, so the
    two sides differ by exactly one swap of adjacent words.
    """
    rng = np.random.default_rng(seed)
    good, bad = [], []
    for s in sentences:
        swapped = swap_adjacent_words(s, rng)
        if swapped is not None:
            good.append(" ".join(s.split()))
            bad.append(swapped)
    if not good:
        raise ValueError("no sentence has two adjacent different words; no minimal pair made")
    return good, bad


# -------------------------------------------------- docstring sentences (synthetic source text)

_SENTENCE_END = re.compile(r"(?<=[A-Za-z)])\.(?=\s|$)")
_PLAIN_SENTENCE = re.compile(r"[A-Za-z][A-Za-z ,;:'()-]*[A-Za-z)]\.?")


def first_sentence(doc: str) -> str:
    """The first sentence of a document: its first paragraph up to the first full stop.

    Whitespace (line breaks included) is normalised to single spaces.
    """
    paragraph = " ".join(doc.strip().split("\n\n", 1)[0].split())
    end = _SENTENCE_END.search(paragraph)
    return paragraph[: end.end()] if end else paragraph


def docstring_sentences(
    docs: Sequence[str], n: int | None = None, min_words: int = 3, max_chars: int = 200
) -> list[str]:
    """The first sentences of documents that are plain ASCII prose, deduplicated, in order.

    A sentence is kept when it holds only ASCII letters, spaces and ``, ; : ' ( ) -`` (an
    optional final full stop), starts with a letter, has at least ``min_words`` words and at
    most ``max_chars`` characters: plain Latin-script prose, so that :func:`transliterate`
    applies to every letter and :func:`swap_adjacent_words` finds words to swap. The first
    ``n`` kept sentences are returned (all when None).
    """
    if n is not None and n < 1:
        raise ValueError(f"n must be ≥ 1 (or None for all), got {n}")
    out: list[str] = []
    seen: set[str] = set()
    for doc in docs:
        s = first_sentence(doc)
        if (
            s not in seen
            and len(s) <= max_chars
            and _PLAIN_SENTENCE.fullmatch(s)
            and len(s.split()) >= min_words
        ):
            seen.add(s)
            out.append(s)
            if n is not None and len(out) == n:
                break
    return out


# ------------------------------------------ the workflow's corpus kinds (expanded into corpora)

STUDY_KINDS = ("flores", "minimal_pairs", "synthetic_scripts", "synthetic_pairs")
SOURCE_KINDS = ("python_docs", "text")
ORIGINAL_SCRIPT = "Latn"
PAIR_SIDES = ("good", "bad")
SYNTHETIC_NOTE = {
    "synthetic_scripts": (
        "SYNTHETIC: first sentences of Python docstrings, transliterated letter by letter into "
        "other scripts (not natural language in those scripts)"
    ),
    "synthetic_pairs": (
        "SYNTHETIC: first sentences of Python docstrings (good) and the same sentences with one "
        "random pair of adjacent words swapped (bad)"
    ),
}


def derived_name(group: str, member: str) -> str:
    """Name of one corpus expanded from a study corpus, e.g. 'flores-eng_Latn'."""
    return f"{group}-{member}"


def expand_corpora(
    corpora: Mapping[str, Mapping[str, Any]], missing: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    """The config's corpora with each study kind replaced by its aligned member corpora.

    Ordinary corpora (python_docs, text, random_tokens) pass through unchanged. A study corpus
    named ``g`` becomes one corpus per member, named ``g-<member>`` and placed where ``g`` was:

    - ``flores`` → one per language code (``flores-eng_Latn``); each FLORES file is located now
      (so a missing language stops before any job, naming every path looked at);
    - ``minimal_pairs`` and ``synthetic_pairs`` → ``g-good`` and ``g-bad``;
    - ``synthetic_scripts`` → ``g-Latn`` (the source sentences) and one per script
      (``g-Cyrl``, ``g-Grek``).

    Each member is an ordinary corpus entry of kind ``aligned`` (``windows: document``, one
    row per sentence, every sentence in the eval split, sentence i of every member aligned)
    that records its ``origin`` kind, ``group``, ``member``, all ``members`` and what it is made
    from. Raises ConfigError naming the config key for a missing file, a bad ``source`` or a
    name clash. With a ``missing`` list, a missing FLORES or pairs file is appended to it as a
    message instead (the member then has no input file): a dry run plans without the data.
    """
    from repgeom.workflow.config import ConfigError, schema_defaults

    out: dict[str, dict[str, Any]] = {}
    errors: list[str] = []
    derived: dict[str, str] = {}
    for name, cfg in corpora.items():
        kind = cfg.get("kind")
        if kind not in STUDY_KINDS:
            out[name] = dict(cfg)
            continue
        try:
            members = _expand_one(name, schema_defaults("$defs.corpus", cfg), corpora, missing)
        except ConfigError as err:
            errors.append(str(err))
            continue
        for member, entry in members.items():
            full = derived_name(name, member)
            derived[full] = name
            out[full] = entry
    for full, group in derived.items():
        if full in corpora:
            errors.append(
                f"config key 'corpora.{full}': the name is also made by 'corpora.{group}' "
                f"({corpora[group]['kind']}); rename one of them"
            )
    if errors:
        raise ConfigError("invalid config:\n  " + "\n  ".join(errors))
    return out


def _expand_one(
    name: str,
    cfg: Mapping[str, Any],
    corpora: Mapping[str, Mapping[str, Any]],
    missing: list[str] | None,
) -> dict[str, dict[str, Any]]:
    from repgeom.workflow.config import ConfigError

    kind = cfg["kind"]
    key = f"corpora.{name}"
    base: dict[str, Any] = {"kind": "aligned", "origin": kind, "group": name, "windows": "document"}
    if kind == "flores":
        codes = list(cfg.get("languages") or [])
        if not codes:
            raise ConfigError(f"config key '{key}.languages': list at least one language code")
        files = []
        for i, code in enumerate(codes):
            candidates = flores_candidates(Path(cfg["path"]), cfg["split"], code)
            found = next((p for p in candidates if p.is_file()), None)
            if found is None:
                looked = "\n    ".join(str(p) for p in candidates)
                _missing(
                    f"config key '{key}.languages[{i}]': FLORES language {code!r} "
                    f"({cfg['split']}) not found under {cfg['path']}; looked for:\n    {looked}\n"
                    "  Check the code (e.g. 'eng_Latn'), the split and the FLORES root directory.",
                    missing,
                )
            files.append(None if found is None else str(found))
        base.update(path=cfg["path"], split=cfg["split"], members=codes, synthetic=False)
        return {
            code: {
                **base,
                "member": code,
                "file": f,
                "anchor": files[0],
                "inputs": [p for p in (f, files[0]) if p is not None],
            }
            for code, f in zip(codes, files, strict=True)
        }
    if kind == "minimal_pairs":
        present = Path(cfg["path"]).is_file()
        if not present:
            _missing(
                f"config key '{key}.path': {cfg['path']} does not exist; give a CSV, TSV or "
                "JSON-lines file of minimal pairs",
                missing,
            )
        base.update(
            path=cfg["path"],
            good_column=cfg["good_column"],
            bad_column=cfg["bad_column"],
            members=list(PAIR_SIDES),
            synthetic=False,
            inputs=[cfg["path"]] if present else [],
        )
        return {side: {**base, "member": side} for side in PAIR_SIDES}
    source = cfg.get("source")
    src = corpora.get(source) if isinstance(source, str) else None
    if src is None or src.get("kind") not in SOURCE_KINDS:
        ok = sorted(c for c, v in corpora.items() if v.get("kind") in SOURCE_KINDS)
        raise ConfigError(
            f"config key '{key}.source': {source!r} must name a python_docs or text corpus "
            f"of the config (these are: {ok})"
        )
    base.update(source=source, n_sentences=cfg["n_sentences"], synthetic=True)
    base["description"] = SYNTHETIC_NOTE[kind]
    if kind == "synthetic_scripts":
        scripts = list(cfg["scripts"])
        bad = [s for s in scripts if s not in _TARGETS]
        if bad or not scripts or len(set(scripts)) != len(scripts):
            raise ConfigError(
                f"config key '{key}.scripts': {scripts} must list distinct scripts among "
                f"{sorted(_TARGETS)}"
            )
        members = [ORIGINAL_SCRIPT, *scripts]
        base["members"] = members
        return {s: {**base, "member": s} for s in members}
    base.update(seed=cfg["seed"], members=list(PAIR_SIDES))
    return {side: {**base, "member": side} for side in PAIR_SIDES}


def _missing(message: str, missing: list[str] | None) -> None:
    """Raise ConfigError, or collect the message when the caller plans without the data."""
    from repgeom.workflow.config import ConfigError

    if missing is None:
        raise ConfigError(message)
    missing.append(message)


def derived_inputs(entry: Mapping[str, Any], paths: Paths | None = None) -> list[str] | None:
    """Files a study corpus member is made from (its job's inputs); None for other corpora."""
    if entry.get("kind") != "aligned":
        return None
    if entry["origin"] in ("synthetic_scripts", "synthetic_pairs"):
        from repgeom.workflow.paths import PATHS

        return [(paths or PATHS).corpus(entry["source"], "eval.jsonl")]
    return list(dict.fromkeys(entry["inputs"]))


def member_sentences(
    entry: Mapping[str, Any], source_docs: Sequence[str] | None = None
) -> list[str]:
    """The sentences of one member of a study corpus, in aligned order.

    FLORES members are checked against the group's first language (same sentence count);
    synthetic members are made from ``source_docs`` (the source corpus's eval documents) with
    :func:`docstring_sentences`, :func:`transliterate` and :func:`make_minimal_pairs`.
    """
    origin = entry["origin"]
    member = entry["member"]
    if origin == "flores":
        own = read_flores_file(Path(entry["file"]))
        if entry["anchor"] != entry["file"]:
            first = entry["members"][0]
            n_first = len(read_flores_file(Path(entry["anchor"])))
            if n_first != len(own):
                raise ValueError(
                    f"FLORES corpus {derived_name(entry['group'], member)}: {entry['file']} has "
                    f"{len(own)} sentences but {first!r} ({entry['anchor']}) has {n_first}; "
                    "the languages must be aligned sentence by sentence (same release and split)"
                )
        return own
    if origin == "minimal_pairs":
        good, bad = read_minimal_pairs(
            Path(entry["path"]), entry["good_column"], entry["bad_column"]
        )
        return good if member == "good" else bad
    if source_docs is None:
        raise ValueError(f"{origin} corpus {entry['group']!r} needs its source documents")
    if origin == "synthetic_scripts":
        sentences = docstring_sentences(source_docs, entry["n_sentences"])
        _enough(sentences, entry)
        if member == ORIGINAL_SCRIPT:
            return sentences
        return [transliterate(s, member) for s in sentences]
    if origin == "synthetic_pairs":
        sentences = docstring_sentences(source_docs)
        _enough(sentences, entry)
        good, bad = make_minimal_pairs(sentences, entry["seed"])
        n = entry["n_sentences"]
        return (good if member == "good" else bad)[:n]
    raise ValueError(f"unknown study corpus origin {origin!r}")


def _enough(sentences: list[str], entry: Mapping[str, Any]) -> None:
    if len(sentences) < 2:
        raise ValueError(
            f"corpus {entry['source']!r} has {len(sentences)} eval document(s) whose first "
            f"sentence is plain ASCII prose; {entry['group']!r} needs at least 2 (give the "
            "source corpus more documents or a larger eval_fraction)"
        )


def read_flores_file(path: Path) -> list[str]:
    """Sentences of one FLORES file of any layout :func:`read_flores` understands."""
    path = Path(path)
    return _read_parquet_text(path) if path.suffix == ".parquet" else read_lines(path)


def write_aligned_corpus(
    sentences: Sequence[str], out_dir: str | Path, attrs: Mapping[str, Any]
) -> dict[str, Any]:
    """Write an aligned corpus: every sentence in eval.jsonl in order, train.jsonl a copy.

    Aligned corpora must not be split by content hash (that would break the alignment by
    index), so every sentence is in the eval split; the train split is an identical copy so
    that a tokenizer or model can still be trained on it (its eval loss is then on seen text).
    Writes stats.json with the same keys as :func:`repgeom.data.corpus.write_corpus`.
    """
    from repgeom.data.corpus import content_sha256
    from repgeom.io import atomic_path, write_json

    docs = list(sentences)
    if not docs:
        raise ValueError("the aligned corpus has no sentences")
    empty = [i for i, s in enumerate(docs) if not s.strip()]
    if empty:
        raise ValueError(f"sentence(s) {empty[:10]} are empty; an aligned corpus needs text")
    out = Path(out_dir)
    sha = content_sha256(docs)
    stats: dict[str, Any] = dict(attrs)
    stats.update(
        sha256=sha,
        n_documents=len(docs),
        n_characters=sum(len(d) for d in docs),
        eval_fraction=1.0,
        split="aligned: every sentence in eval, in order; train is an identical copy",
    )
    for name in ("train", "eval"):
        with atomic_path(out / f"{name}.jsonl") as tmp, open(tmp, "w", encoding="utf-8") as f:
            for d in docs:
                f.write(json.dumps({"text": d}, ensure_ascii=False) + "\n")
        stats[f"n_{name}"] = len(docs)
        stats[f"sha256_{name}"] = sha
    write_json(stats, out / "stats.json")
    return stats
