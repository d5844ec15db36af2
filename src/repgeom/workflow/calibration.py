"""What a run's projection is computed from, besides Snakemake's plan: each model's shape, and
the speed of its jobs measured on this machine.

- Each model's shape comes from its checkpoint on disk, or from its published dimensions
  (:mod:`repgeom.workflow.published`), or from the config of a model the workflow trains.
- Calibration measures, on this machine, the start-up of a Python job, the extraction of each
  model shape (the real :func:`repgeom.activations.extraction.extract`, at two token counts, so
  that its slope is the cost per token) and its bare forward, and the geometry job of each
  hidden size per layer (the real :func:`repgeom.metrics.geometry.geometry_datasets`), the
  similarity job of each shape (the real :func:`repgeom.metrics.similarity.similarity_dataset`),
  and the training of the rank-restricted heads of each (vocabulary, hidden size) per token and
  per update (the real :func:`repgeom.bottleneck.heads.train_heads`).

:mod:`repgeom.workflow.projection` costs the plan's jobs with them.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from repgeom.activations.size import ModelSize


def transformers_config(model: Mapping[str, Any], tokenizers: Mapping[str, Any]) -> Any:
    """The transformers config of a model: its checkpoint's, its published one, or (trained)
    the config section's; None when none is known."""
    import transformers

    from repgeom.activations.architectures import ARCHITECTURES
    from repgeom.activations.checkpoint import checkpoint_config, planning_step
    from repgeom.workflow.published import PUBLISHED

    if model["source"] == "train":
        cfg_class, model_class, _ = ARCHITECTURES[model["architecture"]]
        vocab = tokenizers[model["tokenizer"]]["vocab_size"]
        cfg = getattr(transformers, cfg_class)(**{"vocab_size": vocab, **model["config"]})
        cfg.architectures = [model_class]
        return cfg
    step = planning_step(model)
    found = None if step is None else checkpoint_config(model, step)
    if found is not None and "model_type" in found:
        return transformers.AutoConfig.for_model(**found)
    if model["source"] == "hub" and model["id"] in PUBLISHED:
        cfg_class, model_class, dims, dtype = PUBLISHED[model["id"]]
        return getattr(transformers, cfg_class)(
            **dims, architectures=[model_class], torch_dtype=dtype
        )
    return None


def model_size(cfg: Any) -> ModelSize:
    """The :class:`ModelSize` of a transformers config (parameters counted on the meta device)."""
    import torch
    import transformers

    arch = (getattr(cfg, "architectures", None) or [None])[0]
    cls = getattr(transformers, arch) if arch else None
    if cls is None:
        cls = (
            transformers.AutoModelForMaskedLM
            if cfg.model_type in ("bert", "roberta")
            else transformers.AutoModelForCausalLM
        )
    with torch.device("meta"):
        model = cls(cfg) if not hasattr(cls, "from_config") else cls.from_config(cfg)
    n = sum(p.numel() for p in model.parameters())
    dtype = str(getattr(cfg, "torch_dtype", None) or getattr(cfg, "dtype", None) or "float32")
    dtype = dtype.removeprefix("torch.")
    return ModelSize.from_config({**cfg.to_dict(), "torch_dtype": dtype}, n)


def forward_flops(size: ModelSize, window: int) -> float:
    """FLOPs of one token's forward: 2 × non-embedding parameters, plus attention."""
    body = size.n_params - 2 * size.vocab_size * size.hidden_size
    return 2.0 * max(body, 0) + 2.0 * size.n_layers * window * size.hidden_size


def heads_flops(vocab: int, hidden: int, ranks: list[int]) -> float:
    """FLOPs of one training token of the heads: forward and backward (3 × 2 per multiply-add)
    of a rank-r head (d·r + r·V) for every rank, and of the full-rank head (d·V)."""
    return 6.0 * (sum(r * (hidden + vocab) for r in ranks) + hidden * vocab)


def shape_key(size: ModelSize, eval_loss: bool) -> str:
    """A name for one calibrated extraction: the shape, and the eval loss when asked."""
    return f"d{size.hidden_size}×L{size.n_layers}×V{size.vocab_size}{'+loss' if eval_loss else ''}"


@dataclasses.dataclass
class Calibration:
    """What this machine measured: start-up, and per shape the seconds per token."""

    startup_s: float
    extract_s_per_token: dict[str, float] = dataclasses.field(default_factory=dict)
    forward_s_per_token: dict[str, float] = dataclasses.field(default_factory=dict)
    load_s: dict[str, float] = dataclasses.field(default_factory=dict)
    lens_s_per_token: dict[str, float] = dataclasses.field(default_factory=dict)
    geometry_s_per_layer: dict[tuple[int, int], float] = dataclasses.field(default_factory=dict)
    # (hidden, layers, tokens) -> seconds of one similarity job
    similarity_s: dict[tuple[int, int, int], float] = dataclasses.field(default_factory=dict)
    # (vocab, hidden) -> (seconds per training token, seconds per update) of the heads' training
    heads_s: dict[tuple[int, int], tuple[float, float]] = dataclasses.field(default_factory=dict)


def measure_startup() -> float:
    """Seconds a Python job takes to import what every repgeom script imports."""
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import torch, transformers, xarray, zarr, repgeom.io"], check=True
    )
    return time.perf_counter() - t


def measure_extraction(
    cfg: Any,
    window: int,
    eval_loss: bool,
    logit_lens: bool = False,
    n: tuple[int, int] = (1, 3),
    min_seconds: float = 1.0,
) -> tuple[float, float, float]:
    """(s/token of extraction, s/token of a bare forward, s to build the model) of one shape,
    one thread: the slope between ``n`` windows (batch of one, random tokens), more windows
    while the two differ by less than ``min_seconds``; ``logit_lens``: on every position."""
    import numpy as np
    import torch
    import transformers

    from repgeom.activations.extraction import extract
    from repgeom.activations.lens import LensSample
    from repgeom.data.tokens import Windows

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    arch = (getattr(cfg, "architectures", None) or [None])[0]
    cls = getattr(transformers, arch) if arch else transformers.AutoModel
    model = (cls.from_config(cfg) if hasattr(cls, "from_config") else cls(cfg)).eval()
    load = time.perf_counter() - t0
    rng = np.random.default_rng(0)

    def timed(count: int) -> tuple[float, float]:
        ids = rng.integers(0, cfg.vocab_size, size=(count, window))
        windows = Windows(ids.astype(np.int32), np.full(count, window, dtype=np.int64))
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            lens = LensSample(tokens=2**62, seed=0) if logit_lens else None
            extract(model, windows, Path(tmp) / "s.zarr", 1, {}, eval_loss, lens)
            t_extract = time.perf_counter() - t
        t = time.perf_counter()
        with torch.inference_mode():
            for row in ids:
                model.base_model(torch.as_tensor(row[None]), output_hidden_states=True)
        return t_extract, time.perf_counter() - t

    lo, hi = n
    while True:  # more windows until the difference is long enough to measure
        (e0, f0), (e1, f1) = timed(lo), timed(hi)
        if e1 - e0 > min_seconds or hi >= 4096:
            break
        lo, hi = 4 * lo, 4 * hi
    tokens = (hi - lo) * window
    return max(e1 - e0, 1e-9) / tokens, max(f1 - f0, 1e-9) / tokens, load


def measure_geometry(hidden: int, tokens: int, options: Mapping[str, Any]) -> float:
    """Seconds per layer of the geometry job on a store of ``tokens`` × ``hidden``."""
    import numpy as np

    from repgeom.activations.source import ArraySource
    from repgeom.metrics.geometry import GeometryOptions, geometry_datasets
    from repgeom.options import build

    rng = np.random.default_rng(0)
    n_layers = 2
    x = rng.standard_normal((n_layers, tokens, hidden), dtype=np.float32)
    source = ArraySource(x, position=np.arange(tokens) % 512, sequence=np.arange(tokens) // 512)
    t = time.perf_counter()
    geometry_datasets(source, build(GeometryOptions, options, "metrics.geometry"))
    return (time.perf_counter() - t) / n_layers


def measure_similarity(hidden: int, layers: int, tokens: int, options: Mapping[str, Any]) -> float:
    """Seconds of the similarity job's computation on a store of ``layers`` × ``tokens`` ×
    ``hidden`` (random data; the real :func:`repgeom.metrics.similarity.similarity_dataset`,
    its seeded sample of ``metrics.similarity.sample`` tokens, against a second store)."""
    import numpy as np

    from repgeom.activations.source import ArraySource
    from repgeom.metrics.similarity import SimilarityOptions, similarity_dataset
    from repgeom.options import build

    o = build(SimilarityOptions, options, "metrics.similarity")
    rows = min(tokens, o.sample)  # only the sample is read: a store of that many tokens
    rng = np.random.default_rng(0)
    stores = [
        ArraySource(rng.standard_normal((layers, rows, hidden), dtype=np.float32)) for _ in range(2)
    ]
    t = time.perf_counter()
    similarity_dataset(stores[0], stores[1], o)
    return time.perf_counter() - t


def measure_heads(
    vocab: int, hidden: int, options: Mapping[str, Any], batches: tuple[int, int] = (256, 1024)
) -> tuple[float, float]:
    """(seconds per training token, seconds per update) of training the rank-restricted heads
    of ``bottleneck.heads`` (its ranks, or the default grid) at (``vocab``, ``hidden``), one
    thread, random features: an update's cost is fitted as a + b·rows from the slope between 1
    and 3 updates at two batch sizes (the config's batch size caps the larger)."""
    import numpy as np
    import torch

    from repgeom.bottleneck.heads import HeadTraining, build_heads, train_heads
    from repgeom.bottleneck.memory import check_ranks
    from repgeom.options import build

    torch.set_num_threads(1)
    big = min(batches[1], options["batch_size"])
    sizes = (max(1, min(batches[0], big // 4)), big)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3 * big, hidden), dtype=np.float32)
    y = rng.integers(0, vocab, size=3 * big)
    base = build(HeadTraining, options, "bottleneck.heads", extra=True)
    heads, full = build_heads(vocab, hidden, check_ranks(options["ranks"], vocab, hidden), base)

    def update_s(rows: int) -> float:
        times = []
        for n in (1, 3):
            cfg = dataclasses.replace(base, batch_size=rows, token_budget=n * rows)
            t = time.perf_counter()
            train_heads(
                heads, full, lambda n=n: [(x[: n * rows], y[: n * rows])], cfg, torch.device("cpu")
            )
            times.append(time.perf_counter() - t)
        return max(times[1] - times[0], 1e-9) / 2

    small, large = (update_s(rows) for rows in sizes)
    per_token = max(large - small, 1e-9) / (sizes[1] - sizes[0])
    return per_token, max(small - sizes[0] * per_token, 0.0)
