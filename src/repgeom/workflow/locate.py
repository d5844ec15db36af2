"""Hub checkpoints: the Hugging Face cache, revisions and releases (no torch import)."""

from __future__ import annotations

import os
from pathlib import Path


def hub_cached_commit(repo_id: str, revision: str) -> str | None:
    """The commit hash a revision resolves to in the local HF cache, or None if not cached."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    if not isinstance(found, str):
        return None
    return Path(found).parent.name


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE asks for cache-only loading."""
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def check_hub_revision(repo_id: str, revision: str, online: bool = True) -> str:
    """The commit of a hub revision, from the cache or (``online``) the hub, which also caches
    its config.json (a few kB: what the checkpoint is); raises LookupError saying what to do."""
    commit = hub_cached_commit(repo_id, revision)
    if commit is not None:
        return commit
    how = (
        f"pre-download it on a machine with network: `hf download {repo_id} --revision {revision}`"
        " (or huggingface-cli download), then run with HF_HUB_OFFLINE=1"
    )
    if hub_offline() or not online:
        raise LookupError(f"model {repo_id!r} revision {revision!r} is not in the HF cache; {how}")
    try:
        from huggingface_hub import hf_hub_download

        # config.json tells planning what the checkpoint is (its head); the commit is its folder
        path = hf_hub_download(repo_id, "config.json", revision=revision, etag_timeout=10)
    except Exception as err:  # network errors, missing repo or revision
        raise LookupError(
            f"model {repo_id!r} revision {revision!r} cannot be reached ({type(err).__name__}: "
            f"{err}); {how}"
        ) from err
    return Path(path).parent.name


# files whose presence in the cache means a revision's weights were downloaded
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def hub_weights_cached(repo_id: str, revision: str) -> bool:
    """True when the HF cache holds a weights file of the revision (not only its config)."""
    from huggingface_hub import try_to_load_from_cache

    return any(
        isinstance(try_to_load_from_cache(repo_id, name, revision=revision), str)
        for name in WEIGHT_FILES
    )


def release_revision(repo_id: str, commit: str) -> int:
    """Delete one revision from the HF cache: its snapshot, refs, and the files no other
    revision shares. Returns the bytes freed (0 when the revision is not cached)."""
    from huggingface_hub import scan_cache_dir

    cached = {
        rev.commit_hash
        for repo in scan_cache_dir().repos
        if repo.repo_id == repo_id
        for rev in repo.revisions
    }
    if commit not in cached:
        return 0
    strategy = scan_cache_dir().delete_revisions(commit)
    strategy.execute()
    return int(strategy.expected_freed_size)
