"""Build a Hugging Face hub cache directory by hand, as `hf download` would leave it."""

from __future__ import annotations

import hashlib
from pathlib import Path


def snapshot_dir(cache: Path, repo_id: str, revision: str) -> tuple[Path, str]:
    """(snapshot directory, fake commit hash) of a revision, its ref written."""
    commit = hashlib.sha1(f"{repo_id}@{revision}".encode()).hexdigest()
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / revision).write_text(commit)
    return repo / "snapshots" / commit, commit


def add_revision(cache: Path, repo_id: str, revision: str, model, tokenizer) -> str:
    """Save model + tokenizer as the snapshot of ``revision``; returns its fake commit hash."""
    snapshot, commit = snapshot_dir(cache, repo_id, revision)
    model.save_pretrained(snapshot)
    tokenizer.save_pretrained(snapshot)
    return commit


def add_config(cache: Path, repo_id: str, revision: str, config: dict) -> str:
    """Only config.json in the snapshot of ``revision`` (what planning reads)."""
    import json

    snapshot, commit = snapshot_dir(cache, repo_id, revision)
    snapshot.mkdir(parents=True, exist_ok=True)
    (snapshot / "config.json").write_text(json.dumps(config))
    return commit
