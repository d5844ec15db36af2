"""Text corpora are read right or refused by name: universal newlines, byte-order marks, NUL,
encodings charset-normalizer suggests, folders, JSON-lines and Parquet records, and config
files named as the user gave them."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from charset_normalizer import from_bytes

from repgeom.data import corpus as C
from repgeom.workflow.config import (
    ConfigError,
    config_file_name,
    load_config,
    load_config_file,
    matching_files,
    text_corpus_missing,
)
from tests.workflow import ROOT

SCHEMA = ROOT / "config" / "schema.yaml"
PARAGRAPHS = [f"Paragraph {i}: wörds on\na second line, café {i * 7}" for i in range(40)]
LF = "\n\n".join(PARAGRAPHS) + "\n"


def text_corpus(path, **keys) -> dict:
    """A text corpus entry as the workflow gives it to a job (the schema's defaults filled)."""
    cfg = load_config({"corpora": {"c": {"kind": "text", "path": str(path), **keys}}}, SCHEMA)
    return cfg["corpora"]["c"]


def documents(path, **keys) -> tuple[list[str], dict]:
    return C.corpus_documents("c", text_corpus(path, **keys), matching_files(str(path)))


@pytest.mark.parametrize("newline", ["\r\n", "\r"], ids=["crlf", "cr"])
@pytest.mark.parametrize(
    "keys",
    [{}, {"split_by": "line"}, {"split_by": "file"}, {"n_chunks": 8, "chunk_chars": 64}],
    ids=["paragraph", "line", "file", "chunks"],
)
def test_crlf_and_cr_files_equal_their_lf_twins(tmp_path, newline, keys):
    for name, text in (("lf", LF), ("other", LF.replace("\n", newline))):
        (tmp_path / name).mkdir()
        for i in range(3):  # several files, as the trial's six
            (tmp_path / name / f"part{i}.txt").write_bytes(f"File {i}{newline}{text}".encode())
    lf, _ = documents(tmp_path / "lf", **keys)
    other, _ = documents(tmp_path / "other", **keys)
    assert other == lf and not any("\r" in d for d in other)
    if not keys:
        assert len(other) == 3 * len(PARAGRAPHS)
    if len(lf) < 20:  # too few documents for both splits
        return
    a = C.write_corpus(lf, tmp_path / "out-lf", 0.2, {}, "lf")
    b = C.write_corpus(other, tmp_path / "out-other", 0.2, {}, "other")
    assert (a["sha256_train"], a["sha256_eval"]) == (b["sha256_train"], b["sha256_eval"])


def test_a_single_crlf_file_has_an_eval_split(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(LF.replace("\n", "\r\n").encode())
    docs, attrs = documents(path)
    assert docs == PARAGRAPHS
    stats = C.write_corpus(docs, tmp_path / "out", 0.1, attrs, "c")
    assert stats["n_eval"] > 0 and stats["n_train"] > 0 and stats["format"] == "text"


@pytest.mark.parametrize(
    ("mark", "encoding", "named"),
    [
        (b"\xef\xbb\xbf", "utf-8", "utf-8-sig"),
        (b"\xff\xfe", "utf-16-le", "utf-16-le"),
        (b"\xfe\xff", "utf-16-be", "utf-16-be"),
        (b"\xff\xfe\x00\x00", "utf-32-le", "utf-32-le"),
        (b"\x00\x00\xfe\xff", "utf-32-be", "utf-32-be"),
    ],
    ids=["utf-8-sig", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"],
)
@pytest.mark.parametrize("configured", ["utf-8", "latin-1"])
def test_a_byte_order_mark_decides_the_encoding(tmp_path, mark, encoding, named, configured):
    (tmp_path / "utf8.txt").write_bytes(LF.encode())
    path = tmp_path / "marked.txt"
    path.write_bytes(mark + LF.replace("\n", "\r\n").encode(encoding))
    docs, attrs = documents(path, encoding=configured)
    assert docs == documents(tmp_path / "utf8.txt")[0] == PARAGRAPHS
    assert attrs["byte_order_marks"] == {str(path): named}
    assert C.read_text_file(path, configured, "strict") == (LF, 0)


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1"])
def test_an_undecodable_file_gets_the_encodings_charset_normalizer_suggests(tmp_path, encoding):
    text = "".join(f"Le café {i} était très naïve, à l’été\n\n" for i in range(30))
    if encoding == "latin-1":
        text = text.replace("’", "'")
    data = text.encode(encoding)
    path = tmp_path / "notes.txt"
    path.write_bytes(data)
    with pytest.raises(C.DecodingError) as err:
        documents(path)
    message = str(err.value)
    offset = data.index(b"\xe9")
    assert f"config key 'corpora.c' (path '{path}'): {path}: byte {offset} (0xe9)" in message
    best = from_bytes(data).best().encoding.replace("_", "-")
    assert f"charset-normalizer reads the file as {best}" in message
    assert f"(e.g. encoding: {best})" in message and "errors: replace" in message
    docs, _ = documents(path, encoding=encoding)
    assert docs == [p.strip() for p in text.split("\n\n") if p.strip()]


def test_nul_is_refused_naming_the_file_and_offset(tmp_path):
    data = b"first paragraph\n\nsec\x00ond\n"
    path = tmp_path / "nul.txt"
    path.write_bytes(data)
    with pytest.raises(C.DecodingError) as err:
        documents(path)
    message = str(err.value)
    assert f"config key 'corpora.c' (path '{path}'): {path}: byte 20 (0x00) is a NUL" in message
    assert "errors: replace" in message
    docs, attrs = documents(path, errors="replace")
    assert docs == ["first paragraph", "sec\ufffdond"] and attrs["replaced_characters"] == 1


def test_a_utf16_file_without_mark_is_refused_by_its_nul_with_utf16_suggested(tmp_path):
    path = tmp_path / "wide.txt"
    path.write_bytes(LF.encode("utf-16-le"))
    with pytest.raises(C.DecodingError) as err:
        documents(path)
    message = str(err.value)
    assert f"{path}: byte 1 (0x00) is a NUL" in message and "e.g. encoding: utf-16-le" in message
    assert documents(path, encoding="utf-16-le")[0] == PARAGRAPHS


def test_nul_in_a_wide_encoding_is_named_by_character(tmp_path):
    path = tmp_path / "wide.txt"
    path.write_bytes(b"\xff\xfe" + "ab\x00c".encode("utf-16-le"))
    with pytest.raises(C.DecodingError, match=re.escape(f"{path}: character 2 (U+0000) is a NUL")):
        documents(path)


def test_a_folder_reads_as_its_glob(tmp_path):
    folder = tmp_path / "texts"
    (folder / "sub").mkdir(parents=True)
    for name in ("b.txt", "a.txt", ".hidden.txt", "sub/c.txt"):
        (folder / name).write_text(f"{name} text\n")
    assert matching_files(str(folder)) == matching_files(str(folder / "*"))
    assert matching_files(str(folder)) == [folder / "a.txt", folder / "b.txt"]
    assert matching_files(str(folder) + "/") == matching_files(str(folder))
    assert text_corpus_missing("c", {"kind": "text", "path": str(folder)}) is None
    assert documents(folder)[0] == ["a.txt text", "b.txt text"]
    (tmp_path / "empty").mkdir()
    message = text_corpus_missing("c", {"kind": "text", "path": str(tmp_path / "empty")})
    assert "config key 'corpora.c.path': the folder" in message and "holds no file" in message


RECORDS = [
    {"id": i, "text": f"record {i}\nline two\n\nthird", "body": f"body {i}"} for i in range(30)
]


def write_records(path, records):
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
    if path.name.endswith(".parquet"):
        pq.write_table(pa.Table.from_pylist(records), path)
    elif path.suffix == ".gz":
        path.write_bytes(gzip.compress(lines))
    else:
        path.write_bytes(lines)


@pytest.mark.parametrize("name", ["r.jsonl", "r.jsonl.gz", "r.parquet"])
@pytest.mark.parametrize("field", [None, "body"])
def test_records_are_documents_of_their_field(tmp_path, name, field):
    path = tmp_path / name
    write_records(path, RECORDS)
    keys = {"split_by": "line"} | ({"field": field} if field else {})
    docs, attrs = documents(path, **keys)  # split_by does not apply to records
    assert docs == [r[field or "text"] for r in RECORDS]
    fmt = "parquet" if name.endswith(".parquet") else "jsonl"
    assert (attrs["format"], attrs["field"]) == (fmt, field or "text")
    docs, _ = documents(path, **keys, max_documents=5, min_chars=4)
    assert len(docs) == 5 and set(docs) <= {r[field or "text"] for r in RECORDS}
    chunks, _ = documents(path, **keys, n_chunks=4, chunk_chars=16)
    assert len(chunks) == 4 and all(len(c) == 16 for c in chunks)


def test_records_and_text_mix_and_records_get_universal_newlines(tmp_path):
    (tmp_path / "a.jsonl").write_bytes(b'{"text": "one\\r\\ntwo"}\r\n\r\n{"text": "  three  "}\r\n')
    (tmp_path / "b.txt").write_bytes(b"four\r\n\r\nfive\r\n")
    docs, attrs = documents(tmp_path)
    assert docs == ["one\ntwo", "three", "four", "five"]
    assert attrs["format"] == "jsonl+text" and attrs["field"] == "text"


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ('{"text": "cut', "not JSON (Unterminated string"),
        ('["text"]', "an array, not a JSON object"),
        ('{"body": "x", "id": 3}', "the record has no field 'text' (its fields: 'body', 'id')"),
        ('{"text": null}', "field 'text' is null, not a string"),
        ('{"text": 3}', "field 'text' is a number, not a string"),
        ('{"text": "a\\u0000b"}', "character 1 of the text is a NUL"),
    ],
    ids=["not-json", "not-object", "no-field", "null", "number", "nul"],
)
def test_a_bad_record_is_named_by_file_and_line(tmp_path, line, says):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "fine"}\n\n' + line + '\n{"text": "fine"}\n')
    with pytest.raises(ValueError) as err:
        documents(path)
    assert f"config key 'corpora.c' (path '{path}'): {path}, line 3: {says}" in str(err.value)


def test_a_parquet_file_without_the_column_names_its_columns(tmp_path):
    path = tmp_path / "r.parquet"
    write_records(path, RECORDS)
    with pytest.raises(C.RecordError) as err:
        documents(path, field="content")
    message = str(err.value)
    assert f"{path}: no column 'content' (columns: 'id', 'text', 'body')" in message
    assert "set `field:` on the corpus" in message
    with pytest.raises(C.RecordError, match="column 'id' holds int64, not strings"):
        documents(path, field="id")
    pq.write_table(pa.table({"text": ["a", None]}), path)
    with pytest.raises(C.RecordError, match=r"row 1 \(counting from 0\): column 'text' is null"):
        documents(path)


def test_field_is_a_text_corpus_key(tmp_path):
    assert text_corpus(tmp_path / "a.txt")["field"] == "text"
    bad = {"corpora": {"c": {"kind": "python_docs", "field": "body"}}}
    with pytest.raises(ConfigError, match="config key 'corpora.c.field': only text corpora"):
        load_config(bad, SCHEMA)


DUPLICATED = "corpora:\n  docs: {kind: python_docs}\n  docs: {kind: python_docs}\n"


def test_a_config_error_names_the_file_as_given(tmp_path, monkeypatch):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "dup.yaml").write_text(DUPLICATED)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"^config/dup.yaml, line 3: config key 'docs'"):
        load_config_file("config/dup.yaml")

    class Flagged(str):  # what Snakemake 9's workflow.source_path gives (an AnnotatedString)
        flags = {"sourcecache_entry": str(tmp_path / "config" / "dup.yaml")}

    cached = Flagged(tmp_path / "config" / "dup.yaml")
    assert config_file_name(cached, argv=[]) == "config/dup.yaml"
    with pytest.raises(ConfigError, match=r"^config/dup.yaml, line 3"):
        load_config_file(cached)
    absolute = str(tmp_path / "elsewhere" / "c.yaml")  # a --configfile Snakemake made absolute
    argv = ["-n", "--configfile", "elsewhere/c.yaml", "other.yaml", "--cores", "1"]
    assert config_file_name(absolute, argv=argv) == "elsewhere/c.yaml"
    assert config_file_name(absolute, argv=["--configfile=elsewhere/c.yaml"]) == "elsewhere/c.yaml"
    assert config_file_name(absolute, argv=[]) == "elsewhere/c.yaml"  # below the working dir
    assert config_file_name("/nowhere/c.yaml", argv=[]) == "/nowhere/c.yaml"


def run_snakemake(cwd, *args) -> str:
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env=os.environ.copy(),
    )
    assert res.returncode != 0
    return res.stdout + res.stderr


def test_snakemake_names_a_bad_configfile_as_the_user_wrote_it(tmp_path):
    (tmp_path / "my").mkdir()
    (tmp_path / "my" / "bad.yaml").write_text(DUPLICATED)
    (tmp_path / "work").mkdir()
    out = run_snakemake(
        tmp_path, "-n", "-s", str(ROOT / "Snakefile"), "--directory", "work",
        "--configfile", "my/bad.yaml",
    )  # fmt: skip
    assert "repgeom: my/bad.yaml, line 3: config key 'docs' is given twice" in out
    assert "source-cache" not in out


def test_a_configfile_directive_is_named_by_its_path_not_the_source_cache(tmp_path):
    """Snakemake 9 gives ``configfile: workflow.source_path(...)`` to the workflow as its source
    cache's copy; the message names the file the directive names."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(DUPLICATED)
    (tmp_path / "Snakefile").write_text(
        'configfile: workflow.source_path("config/config.yaml")\n'
        "from repgeom.workflow.config import load_config_file\n"
        "for f in workflow.configfiles:\n"
        "    load_config_file(f)\n"
    )
    out = run_snakemake(tmp_path, "-n")
    assert "config/config.yaml, line 3: config key 'docs' is given twice" in out
    assert "source-cache" not in out
