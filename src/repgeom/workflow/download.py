"""Downloads pinned by sha256, written atomically."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from repgeom.io import atomic_path
from repgeom.provenance import file_sha256


def ensure(path: str | Path, url: str, sha256: str | None, timeout: float = 30) -> Path:
    """Download url to path unless present; check the sha256 (of an existing file too)."""
    path = Path(path)
    if not path.exists():
        with atomic_path(path) as tmp:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as f:
                while block := response.read(1 << 20):
                    f.write(block)
            if sha256 and file_sha256(tmp) != sha256:
                raise ValueError(f"{url} has sha256 {file_sha256(tmp)}, expected {sha256}")
    elif sha256 and file_sha256(path) != sha256:
        raise ValueError(f"{path} has sha256 {file_sha256(path)}, expected {sha256}; delete it")
    return path
