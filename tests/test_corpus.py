"""Corpora: stdlib docstrings, local text files, the stable split."""

from __future__ import annotations

import gzip
import json
import logging
import re
import zipfile

import pytest
import yaml

from repgeom.data import corpus as C
from repgeom.workflow.config import schema_defaults
from tests.workflow import snakemake


def test_python_docs_skips_tests_and_dedupes(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text('"""Module doc."""\ndef f():\n    """Same."""\n')
    (tmp_path / "pkg" / "b.py").write_text('class K:\n    """Same."""\n')
    for skipped in ("test", "site-packages"):
        (tmp_path / skipped).mkdir()
        (tmp_path / skipped / "c.py").write_text('"""Skipped doc."""\n')
    (tmp_path / "broken.py").write_text("def (:\n")
    assert C.python_docs(tmp_path) == ["Module doc.", "Same."]


def test_python_docs_real_stdlib_is_deterministic():
    a = C.python_docs()
    assert len(a) > 1000 and len(set(a)) == len(a)
    assert C.content_sha256(a) == C.content_sha256(C.python_docs())


def test_text_files_plain_gz_zip(tmp_path):
    text = "<page>one [[link]]</page>\n\nsecond paragraph\nline two\n"
    (tmp_path / "a.txt").write_text(text)
    with gzip.open(tmp_path / "a.gz", "wt") as f:
        f.write(text)
    with zipfile.ZipFile(tmp_path / "enwik8.zip", "w") as z:
        z.writestr("enwik8", text.encode() + b"\xe2\x82")  # cut mid-character, as enwik8 is
    for name in ("a.txt", "a.gz"):
        assert C.read_text_file(tmp_path / name, "utf-8", "strict") == (text, 0)
    assert C.read_text_file(tmp_path / "enwik8.zip", "utf-8", "replace") == (text + "\ufffd", 1)
    cut = f"enwik8.zip (member enwik8): byte {len(text.encode())} (0xe2)"
    with pytest.raises(C.DecodingError, match=re.escape(cut)):
        C.read_text_file(tmp_path / "enwik8.zip", "utf-8", "strict")
    docs = C.text_documents([text], "paragraph", None, 512, 0)
    assert docs == ["<page>one [[link]]</page>", "second paragraph\nline two"]
    assert len(C.text_documents([text], "line", None, 512, 0)) == 3


def text_corpus(path, **keys) -> dict:
    """A text corpus entry with the schema's defaults, as the workflow gives it to a job."""
    return schema_defaults("$defs.corpus", {"kind": "text", "path": str(path), **keys})


LATIN1 = "Récord of phâséd-in\n\nsecond paragraph, naïve\n"


def test_latin1_file_is_refused_by_name_then_read_with_its_encoding(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(LATIN1.encode("latin-1"))
    assert path.read_bytes().startswith(b"R\xe9cord of ph\xe2s\xe9d-in")
    with pytest.raises(C.DecodingError) as err:
        C.corpus_documents("notes", text_corpus(path), [path])
    message = str(err.value)
    assert "config key 'corpora.notes'" in message and f"{path}: byte 1 (0xe9)" in message
    # the encoding charset-normalizer reads it as, not a guess of ours
    assert "charset-normalizer reads the file as " in message and "errors: replace" in message
    docs, attrs = C.corpus_documents("notes", text_corpus(path, encoding="latin-1"), [path])
    assert docs == ["Récord of phâséd-in", "second paragraph, naïve"]
    assert attrs["encoding"] == "latin-1" and attrs["replaced_characters"] == 0


def test_errors_replace_counts_what_decoding_replaced(tmp_path, caplog):
    # one U+FFFD written in valid UTF-8 (not a replacement) and four undecodable sequences:
    # a lone Latin-1 byte, 0xff, 0xfe, and a character cut at the end of the file
    bad = b"caf\xe9 au lait, \xef\xbf\xbd kept\n\nbytes \xff\xfe here\n\nend \xe2\x82"
    path = tmp_path / "mixed.txt"
    path.write_bytes(b"".join(b"paragraph %d\n\n" % i for i in range(40)) + bad)
    with caplog.at_level(logging.WARNING):
        docs, attrs = C.corpus_documents("mixed", text_corpus(path, errors="replace"), [path])
    assert sum(d.count("\ufffd") for d in docs) == 5
    assert attrs["replaced_characters"] == 4
    assert "corpora.mixed" in caplog.text and " 4 undecodable" in caplog.text
    C.write_corpus(docs, tmp_path / "out", 0.5, attrs, "mixed")
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["replaced_characters"] == 4 and stats["errors"] == "replace"


@pytest.mark.parametrize(
    ("content", "keys"),
    [(b"", {}), (b"  \n\n \n", {}), (b"short\n\nwords", {"min_chars": 50})],
    ids=["empty", "blank", "below_min_chars"],
)
def test_a_corpus_without_documents_names_its_key_and_file(tmp_path, content, keys):
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="config key 'corpora.little'") as err:
        C.corpus_documents("little", text_corpus(path, **keys), [path])
    assert "no documents" in str(err.value) and str(path) in str(err.value)
    with pytest.raises(
        ValueError, match=r"corpora.little' \(path .*empty.txt'\): text has \d+ char"
    ):
        C.corpus_documents("little", text_corpus(path, n_chunks=4), [path])


def test_sample_chunks_seeded():
    text = "".join(chr(97 + i % 26) for i in range(10_000))
    a = C.sample_chunks(text, 128, 512, seed=3)
    assert a == C.sample_chunks(text, 128, 512, seed=3) != C.sample_chunks(text, 128, 512, seed=4)
    assert len(a) == 128 and all(len(c) == 512 and c in text for c in a)


def test_split_is_stable_and_close_to_fraction(tmp_path):
    docs = [f"document number {i}" for i in range(4000)]
    stats = C.write_corpus(docs, tmp_path, 0.1, {"kind": "test"}, "test")
    ev = C.read_documents(tmp_path / "eval.jsonl")
    tr = C.read_documents(tmp_path / "train.jsonl")
    assert sorted(ev + tr) == sorted(docs)
    assert abs(len(ev) / len(docs) - 0.1) < 0.02
    assert all(C.is_eval(d, 0.1) for d in ev) and not any(C.is_eval(d, 0.1) for d in tr)
    assert json.loads((tmp_path / "stats.json").read_text())["sha256"] == stats["sha256"]
    assert stats["sha256"] == C.content_sha256(docs)


def test_empty_split_is_refused(tmp_path):
    origin = C.corpus_origin("one", {"kind": "text", "path": "one/*.txt"})
    with pytest.raises(ValueError, match=r"corpora.one' \(path 'one/\*.txt'\): the eval split"):
        C.write_corpus(["only one"], tmp_path, 0.01, {}, origin)
    assert list(tmp_path.iterdir()) == []


def test_corpus_job_stops_on_latin1_leaving_nothing_then_reads_it_as_configured(tmp_path):
    """The corpus job through Snakemake: strict UTF-8 stops it (the log names the key, the file
    and the byte) with nothing under results/; ``encoding: latin-1`` reaches it through params."""
    paragraphs = [f"Récord {i} of phâséd-in" for i in range(40)]
    source = tmp_path / "notes.txt"
    source.write_bytes("\n\n".join(paragraphs).encode("latin-1"))
    cfg = {"corpora": {"notes": {"kind": "text", "path": str(source)}}}
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(cfg))
    target = "results/corpora/notes/stats.json"
    res = snakemake(tmp_path, configfile, "--cores", "1", target)
    assert res.returncode != 0
    log = (tmp_path / "logs" / "corpus" / "notes.log").read_text()
    assert f"config key 'corpora.notes' (path '{source}'): {source}: byte 1 (0xe9)" in log
    assert "charset-normalizer reads the file as " in log
    assert "set `encoding:` on the corpus (e.g. encoding: " in log
    assert not [p for p in tmp_path.glob("results/**/*") if p.is_file()]
    cfg["corpora"]["notes"]["encoding"] = "latin-1"
    configfile.write_text(yaml.safe_dump(cfg))
    res = snakemake(tmp_path, configfile, "--cores", "1", target)
    assert res.returncode == 0, res.stderr[-3000:]
    out = tmp_path / "results" / "corpora" / "notes"
    docs = C.read_documents(out / "train.jsonl") + C.read_documents(out / "eval.jsonl")
    assert sorted(docs) == sorted(paragraphs)
    stats = json.loads((out / "stats.json").read_text())
    assert (stats["encoding"], stats["errors"], stats["replaced_characters"]) == (
        "latin-1",
        "strict",
        0,
    )
