"""Build a Hugging Face hub cache directory by hand, as `hf download` would leave it."""

from __future__ import annotations

import hashlib
from pathlib import Path


def add_revision(cache: Path, repo_id: str, revision: str, model, tokenizer) -> str:
    """Save model + tokenizer as the snapshot of ``revision``; returns its fake commit hash."""
    commit = hashlib.sha1(f"{repo_id}@{revision}".encode()).hexdigest()
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    model.save_pretrained(snapshot)
    tokenizer.save_pretrained(snapshot)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / revision).write_text(commit)
    return commit
