"""What a job of any layer needs from its process: its log, threads, device, memory."""

from __future__ import annotations

import errno
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def log_to(path: str | Path | None) -> None:
    """Send stdout, stderr and logging of this process to a log file (appending). A full disk
    that ends the process is then one line (:func:`one_line_disk_full`), not a traceback."""
    if path is None:
        return
    sys.excepthook = one_line_disk_full
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    stream = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives with the process
    sys.stdout = sys.stderr = stream
    logging.basicConfig(
        stream=stream,
        level=logging.INFO,
        force=True,
        format="%(asctime)s %(levelname)s %(message)s",
    )


def one_line_disk_full(kind: type[BaseException], err: BaseException, tb: Any) -> None:
    """sys.excepthook: an uncaught full disk whose message names the path and the free space
    (:func:`repgeom.io.disk_full`) is printed as one line, in the log and on the terminal; any
    other error (a bare ENOSPC too: its traceback says where) as usual."""
    ours = str(getattr(err, "strerror", "")).startswith("no space left on device writing ")
    if not (isinstance(err, OSError) and err.errno == errno.ENOSPC and ours):
        sys.__excepthook__(kind, err, tb)
        return
    _say(f"repgeom: {err.strerror or err}")  # the process exits with status 1 after this


def _say(line: str) -> None:
    """One line in the log (stderr) and, when log_to redirected it, on the terminal."""
    print(line, file=sys.stderr, flush=True)
    if sys.stderr is not sys.__stderr__:
        print(line, file=sys.__stderr__, flush=True)


def fail(message: str) -> None:
    """Stop the job with ``repgeom: message`` in the log and on the terminal (no traceback)."""
    line = f"repgeom: {message}"
    if sys.stderr is not sys.__stderr__:
        print(line, file=sys.__stderr__, flush=True)
    raise SystemExit(line)


def set_threads(n: int) -> None:
    """Use n threads in torch and BLAS."""
    import torch

    os.environ.setdefault("OMP_NUM_THREADS", str(n))
    torch.set_num_threads(max(1, n))


def resolve_device(device: str) -> Any:
    """The torch.device of a config's ``device``: 'auto' is CUDA when one is visible, else the
    CPU; 'cpu' and 'cuda[:i]' as given; CUDA asked for where none is visible is an error."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not (device == "cpu" or device.startswith("cuda")):
        raise ValueError(f"device must be 'cpu', 'cuda[:i]' or 'auto', got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for but no CUDA device is visible; use 'cpu'")
    return torch.device(device)


def available_memory() -> int:
    """Bytes of RAM available now: MemAvailable of /proc/meminfo, else free physical pages."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def format_bytes(n: float) -> str:
    """'1.50 GiB', '12.3 MiB' or '512 KiB': the largest unit that keeps the value ≥ 1."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20)):
        if n >= size:
            return f"{n / size:.{2 if unit == 'GiB' else 1}f} {unit}"
    return f"{n / 2**10:.0f} KiB"


@contextmanager
def memory_exit(what: str) -> Iterator[None]:
    """Turn a MemoryError raised inside into SystemExit with the message prefixed by ``what``
    (the config key to change), printed on the terminal as well (log_to sends stderr to the log)."""
    try:
        yield
    except MemoryError as err:
        message = f"repgeom: {what}: {err}"
        print(message, file=sys.__stderr__)
        raise SystemExit(message) from None
