"""Process set-up for workflow jobs: logs to a file, thread counts."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path


def log_to(path: str | Path | None) -> None:
    """Send stdout, stderr and logging of this process to a log file (appending)."""
    if path is None:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    stream = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives with the process
    sys.stdout = sys.stderr = stream
    logging.basicConfig(
        stream=stream,
        level=logging.INFO,
        force=True,
        format="%(asctime)s %(levelname)s %(message)s",
    )


def set_threads(n: int) -> None:
    """Use n threads in torch and BLAS."""
    import torch

    os.environ.setdefault("OMP_NUM_THREADS", str(n))
    torch.set_num_threads(max(1, n))
