"""Pinned downloads: checked by sha256, written atomically (file:// URLs need no network)."""

from __future__ import annotations

import hashlib

import pytest

from repgeom.workflow.download import ensure


def test_download_checks_sha256(tmp_path):
    src = tmp_path / "remote.txt"
    src.write_bytes(b"hello corpus\n" * 1000)
    good = hashlib.sha256(src.read_bytes()).hexdigest()
    dest = tmp_path / "resources" / "corpus.txt"
    ensure(dest, src.as_uri(), good)
    assert dest.read_bytes() == src.read_bytes()
    ensure(dest, "file:///nonexistent", good)  # present and verified: no download
    other = tmp_path / "resources" / "bad.txt"
    with pytest.raises(ValueError, match="expected 0000"):
        ensure(other, src.as_uri(), "0" * 64)
    assert not other.exists() and sorted(p.name for p in other.parent.iterdir()) == ["corpus.txt"]
    dest.write_bytes(b"tampered")
    with pytest.raises(ValueError, match="delete it"):
        ensure(dest, src.as_uri(), good)


def test_unreachable_url_leaves_nothing(tmp_path):
    with pytest.raises(OSError):
        ensure(tmp_path / "x.txt", (tmp_path / "missing").as_uri(), None)
    assert list(tmp_path.iterdir()) == []
