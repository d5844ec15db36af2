"""Corpora: stdlib docstrings, local text files, the stable split."""

from __future__ import annotations

import gzip
import json
import zipfile

import pytest

from repgeom.data import corpus as C


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
        assert C.read_text_file(tmp_path / name) == text
    assert C.read_text_file(tmp_path / "enwik8.zip").startswith(text)
    assert C.read_text_file(tmp_path / "enwik8.zip").endswith("\ufffd")
    docs = C.text_documents([tmp_path / "a.txt"], "paragraph")
    assert docs == ["<page>one [[link]]</page>", "second paragraph\nline two"]
    assert len(C.text_documents([tmp_path / "a.txt"], "line")) == 3
    assert C.resolve_text_paths(str(tmp_path / "*.txt")) == [tmp_path / "a.txt"]
    with pytest.raises(FileNotFoundError):
        C.resolve_text_paths(str(tmp_path / "*.none"))


def test_sample_chunks_seeded():
    text = "".join(chr(97 + i % 26) for i in range(10_000))
    a = C.sample_chunks(text, 128, 512, seed=3)
    assert a == C.sample_chunks(text, 128, 512, seed=3) != C.sample_chunks(text, 128, 512, seed=4)
    assert len(a) == 128 and all(len(c) == 512 and c in text for c in a)


def test_split_is_stable_and_close_to_fraction(tmp_path):
    docs = [f"document number {i}" for i in range(4000)]
    stats = C.write_corpus(docs, tmp_path, 0.1, {"kind": "test"})
    ev = C.read_documents(tmp_path / "eval.jsonl")
    tr = C.read_documents(tmp_path / "train.jsonl")
    assert sorted(ev + tr) == sorted(docs)
    assert abs(len(ev) / len(docs) - 0.1) < 0.02
    assert all(C.is_eval(d, 0.1) for d in ev) and not any(C.is_eval(d, 0.1) for d in tr)
    assert json.loads((tmp_path / "stats.json").read_text())["sha256"] == stats["sha256"]
    assert stats["sha256"] == C.content_sha256(docs)


def test_empty_split_is_refused(tmp_path):
    with pytest.raises(ValueError, match="eval split is empty"):
        C.write_corpus(["only one"], tmp_path, 0.01, {})
    assert list(tmp_path.iterdir()) == []
