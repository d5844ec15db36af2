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
- The other jobs are timed the same way, each on the real library function at a small size and
  scaled: a job without torch (:func:`measure_light_startup`) and matplotlib's import and one
  figure saved as PNG and PDF (:func:`measure_plots`); reading one small dataset
  (:func:`measure_reads`); fingerprinting stored weights and the weights job's distances, per
  byte (:func:`measure_weights`); a trained model's training step and checkpoint (evaluation
  and save) at its shape (:func:`measure_training`); a Birth variant's iteration and
  evaluation (:func:`measure_birth`); the LM-head spectrum at (V, d) (:func:`measure_lm_head`);
  the languages metrics per store and layer and the grammaticality bootstrap per pair set and
  layer (:func:`measure_languages`); and, on a sample of a corpus's text, its size, reading,
  BPE training and tokenization per character and the n-gram W-error per token
  (:func:`corpus_sample`, :func:`measure_corpus`, :func:`measure_ngram`).

- Memory: each start-up's resident memory (a fresh process after its imports), and the peak of
  each measurement that runs in a fresh process (:func:`in_fresh_process`: the process a job
  would be, its start-up imports first, then the real function), read from the kernel's
  ``VmHWM`` (or ``ru_maxrss``); a measurement at a reduced size has what it allocated beyond
  its imports scaled to the job's size (:meth:`Peak.scaled`), or, where that grows with the
  size (a corpus's sample, the n-gram's tokens, Birth's batches), extrapolated from two sizes
  a factor 4 apart (:meth:`Peak.extrapolated`).
- The calibration prints no progress bars when its output is not a terminal
  (:func:`no_progress_bars`), in this process or the ones it starts.

:mod:`repgeom.workflow.projection` costs the plan's jobs with them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import io
import json
import math
import os
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
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


@dataclasses.dataclass(frozen=True)
class CorpusRates:
    """A corpus's size and the speed of the jobs that read its text, measured on a sample of it
    (:func:`measure_corpus`); ``chars`` 0 when its text is not on disk before the run."""

    chars: float = 0.0  # characters of the whole corpus
    read_s_per_char: float = 0.0  # the corpus job reading and splitting it
    bpe_s_per_char: float = 0.0  # a BPE trained on it
    encode_s_per_char: float = 0.0  # its tokenization
    tokens_per_char: float = 0.0


@dataclasses.dataclass(frozen=True)
class Peak:
    """The resident memory of the fresh process that ran a measurement (bytes): ``before`` the
    measured call (its start-up imports loaded), and at its ``peak``."""

    before: int
    peak: int

    def scaled(self, factor: float) -> Peak:
        """The peak had the call allocated ``factor`` times what it did beyond ``before``."""
        return Peak(self.before, self.before + int(max(self.peak - self.before, 0) * factor))

    def extrapolated(self, smaller: Peak, sizes: tuple[float, float], size: float) -> Peak:
        """The peak at ``size`` of a measurement whose work grows with its size, measured at
        ``sizes`` (``smaller``'s, then this one's): what it allocated beyond ``before``, as the
        power of the size through the two, its exponent between 0 (constant) and 1 (linear:
        the work a sample measures, word counts or n-gram contexts, grows slower than the
        corpus)."""
        small, large = (max(p.peak - p.before, 0) for p in (smaller, self))
        if large <= small or size <= sizes[1]:
            exponent = 0.0
        elif small == 0:
            exponent = 1.0
        else:
            exponent = min(math.log(large / small) / math.log(sizes[1] / sizes[0]), 1.0)
        work = large * (max(size, sizes[1]) / sizes[1]) ** exponent
        return Peak(self.before, self.before + int(work))

    def above(self, base: int) -> int:
        """The peak of a process that starts at ``base`` and allocates what the call did."""
        return base + max(self.peak - self.before, 0)


@dataclasses.dataclass
class Calibration:
    """What this machine measured: the start-up of a job, and the rates each rule's jobs are
    costed from (per shape, model, variant or corpus)."""

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
    light_startup_s: float = 0.0  # a job that imports numpy, xarray and repgeom.io, no torch
    plot_import_s: float = 0.0  # matplotlib's pyplot imported, and its first figure's fonts
    figure_s: float = 0.0  # one figure saved as PNG and PDF
    read_s_per_file: float = 0.0  # one small dataset read
    hash_s_per_byte: float = 0.0  # fingerprinting stored weights
    distance_s_per_byte: float = 0.0  # the weights job, per checkpoint byte read
    # trained model -> (seconds per step, per checkpoint (evaluation and save), building it)
    training_s: dict[str, tuple[float, float, float]] = dataclasses.field(default_factory=dict)
    # Birth variant -> (seconds per iteration, per evaluation, parameters of its model)
    birth_s: dict[str, tuple[float, float, int]] = dataclasses.field(default_factory=dict)
    # (vocab, hidden) -> seconds of the LM-head spectrum
    lm_head_s: dict[tuple[int, int], float] = dataclasses.field(default_factory=dict)
    # (hidden, sentences, tokens) -> (seconds per store and layer, per pair set and layer)
    languages_s: dict[tuple[int, int, int], tuple[float, float]] = dataclasses.field(
        default_factory=dict
    )
    # corpus -> its size and the speed of reading and tokenizing its text
    corpora: dict[str, CorpusRates] = dataclasses.field(default_factory=dict)
    # (tokenizer, corpus) -> (seconds, seconds per token) of the n-gram W-error
    ngram_s: dict[tuple[str, str], tuple[float, float]] = dataclasses.field(default_factory=dict)
    # resident memory (bytes, 0: not measured) of a job's start-up with torch, of one that loads
    # a checkpoint, without torch, and the peak of the figure calibration's process (imports,
    # pyplot, two figures saved)
    startup_rss: int = 0
    model_startup_rss: int = 0
    light_startup_rss: int = 0
    figure_rss: int = 0
    # (measurement, its key in the rates above) -> the memory of the fresh process that ran it,
    # scaled or extrapolated to the job's size where the measurement ran a smaller one:
    # "reads", "weights",
    # "geometry", "similarity", "heads", "lm_head", "training", "birth", "languages", "ngram",
    # "corpus" (reading a sample of it), "tokens" (a BPE trained on the sample and the sample
    # tokenized)
    peaks: dict[tuple[str, Any], Peak] = dataclasses.field(default_factory=dict)


# what a job imports before its work, with torch, loading a checkpoint, and without torch (as
# its start-up is measured)
TORCH_IMPORTS = ("torch", "transformers", "xarray", "zarr", "repgeom.io")
MODEL_IMPORTS = (*TORCH_IMPORTS, "repgeom.activations.models")
LIGHT_IMPORTS = ("numpy", "xarray", "repgeom.io")


def peak_rss() -> int:
    """This process's peak resident memory so far, in bytes: Linux's ``VmHWM`` (that of this
    program's memory: ``ru_maxrss`` would keep the parent's of a process started by fork and
    exec), else ``ru_maxrss`` (KiB on Linux, bytes on macOS)."""
    import resource
    import sys

    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


# a fresh process running one measurement: its imports, the call (pickled), the peak
FRESH = """
import importlib, pickle, sys
from repgeom.workflow.calibration import peak_rss
with open(sys.argv[1], "rb") as fh:
    warm, call = pickle.load(fh)
for name in warm:
    importlib.import_module(name)
before = peak_rss()
fn, args, kwargs = pickle.loads(call)
result = fn(*args, **kwargs)
peak = peak_rss()
with open(sys.argv[1], "wb") as fh:
    pickle.dump((result, before, peak), fh)
"""


def in_fresh_process(
    fn: Callable[..., Any], *args: Any, warm: Sequence[str] = LIGHT_IMPORTS, **kwargs: Any
) -> tuple[Any, Peak]:
    """``fn(*args, **kwargs)`` (a module-level function, picklable arguments) in a fresh Python
    process, as a job runs: the modules ``warm`` imported first, then the call. Its result and
    the process's :class:`Peak`. Its output is dropped; RuntimeError with the end of its stderr
    when it fails."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "call.pickle"
        path.write_bytes(pickle.dumps((tuple(warm), pickle.dumps((fn, args, kwargs)))))
        res = subprocess.run(
            [sys.executable, "-c", FRESH, str(path)], capture_output=True, text=True
        )
        if res.returncode != 0:
            raise RuntimeError(f"calibrating {fn.__name__} failed:\n{res.stderr[-3000:]}")
        result, before, peak = pickle.loads(path.read_bytes())
    return result, Peak(before, peak)


@contextlib.contextmanager
def no_progress_bars(when: bool = True) -> Iterator[None]:
    """While the block runs (when ``when``), no progress bars in this process or the processes
    it starts: tqdm's (every bar's ``disable`` default: here its constructor's, and
    ``TQDM_DISABLE`` for a new process), huggingface_hub's and transformers'
    (``HF_HUB_DISABLE_PROGRESS_BARS``). A bar asking for ``disable`` itself keeps its choice.
    Restored after."""
    if not when:
        yield
        return
    import tqdm.std

    env = {"TQDM_DISABLE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    saved_env = {k: os.environ.get(k) for k in env}
    init = tqdm.std.tqdm.__init__
    os.environ.update(env)
    tqdm.std.tqdm.__init__ = functools.partialmethod(init, disable=True)  # type: ignore[method-assign]
    try:
        yield
    finally:
        tqdm.std.tqdm.__init__ = init  # type: ignore[method-assign]
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# :func:`peak_rss` for a process that does not import this module (a start-up, the figures)
PEAK_RSS = inspect.getsource(peak_rss)


def _startup(imports: Sequence[str]) -> tuple[float, int]:
    """(seconds, peak resident bytes) of a fresh Python process importing ``imports``."""
    t = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-c", f"import {', '.join(imports)}\n{PEAK_RSS}\nprint(peak_rss())"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    seconds = time.perf_counter() - t
    return seconds, int(res.stdout.split()[-1])


def measure_startup() -> tuple[float, int]:
    """(seconds, peak resident bytes) of a Python job importing what every repgeom script with
    torch imports (:data:`TORCH_IMPORTS`)."""
    return _startup(TORCH_IMPORTS)


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


def _timed(fn: Callable[[], Any]) -> float:
    """Seconds ``fn()`` takes."""
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def measure_model_startup() -> tuple[float, int]:
    """(seconds, peak resident bytes) of a Python job that loads a checkpoint (extraction, the
    heads, the LM head) importing what it does before its work (:data:`MODEL_IMPORTS`)."""
    return _startup(MODEL_IMPORTS)


def measure_light_startup() -> tuple[float, int]:
    """(seconds, peak resident bytes) of a Python job without torch importing what it reads and
    writes with (:data:`LIGHT_IMPORTS`)."""
    return _startup(LIGHT_IMPORTS)


PLOTS = """
import json, sys, tempfile, time
t0 = time.perf_counter()
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from repgeom.plots.common import save_figure
t1 = time.perf_counter()
def figure(out, i):
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax in axes:
        for k in range(8):
            ax.plot(range(40), [((j * (k + 1)) % 17) / 17 for j in range(40)], label=f"step {k}")
        ax.set_xlabel("layer"); ax.set_ylabel("anisotropy"); ax.legend(fontsize=6)
    fig.suptitle("calibration")
    save_figure(fig, f"{out}/{i}.png", f"{out}/{i}.pdf")
with tempfile.TemporaryDirectory() as out:
    times = []
    for i in range(2):
        t = time.perf_counter(); figure(out, i); times.append(time.perf_counter() - t)
json.dump([t1 - t0, times, peak_rss()], sys.stdout)
"""


def measure_plots() -> tuple[float, float, int]:
    """(seconds a figure job spends importing matplotlib's pyplot and drawing its first figure
    beyond the others, seconds of each figure saved as PNG and PDF by
    :func:`repgeom.plots.common.save_figure`, the peak resident bytes of that process), in a
    fresh process after numpy and xarray."""
    res = subprocess.run(
        [sys.executable, "-c", f"import numpy, xarray, repgeom.io\n{PEAK_RSS}\n{PLOTS}"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    imported, times, peak = json.loads(res.stdout)
    per_figure = sum(times[1:]) / len(times[1:])
    return imported + max(times[0] - per_figure, 0.0), per_figure, int(peak)


def measure_reads(n: int = 8) -> float:
    """Seconds to read one small dataset (a metric of one store: 5 variables over 9 layers and
    2 position sets) with :func:`repgeom.io.read_dataset`, written by its writer."""
    import numpy as np
    import xarray as xr

    from repgeom.io import read_dataset, write_dataset

    rng = np.random.default_rng(0)
    ds = xr.Dataset(
        {f"v{i}": (("layer", "positions"), rng.standard_normal((9, 2))) for i in range(5)},
        coords={"layer": np.arange(9), "positions": ["all", "no_first"]},
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.nc"
        write_dataset(ds, path)
        return _timed(lambda: [read_dataset(path).load() for _ in range(n)]) / n


def measure_weights(
    n_checkpoints: int = 4, shape: tuple[int, int] = (4096, 128)
) -> tuple[float, float]:
    """(seconds per byte of :func:`repgeom.activations.weights.fingerprint_checkpoint`, seconds
    per checkpoint byte read by :func:`repgeom.activations.weights.weights_dataset`) on
    ``n_checkpoints`` safetensors checkpoints of random float32 tensors (an embedding of
    ``shape``, attention, MLP and norm tensors); the weights job reads each checkpoint once
    and the reference of each pair it compares once more (:func:`checkpoint_reads`)."""
    import numpy as np
    from safetensors.numpy import save_file

    from repgeom.activations.weights import fingerprint_checkpoint, weights_dataset

    v, d = shape
    rng = np.random.default_rng(0)
    names = {
        "embed_in.weight": (v, d),
        "layers.0.attention.dense.weight": (d, d),
        "layers.0.mlp.dense_h_to_4h.weight": (4 * d, d),
        "layers.0.input_layernorm.weight": (d,),
        "embed_out.weight": (v, d),
    }
    with tempfile.TemporaryDirectory() as tmp:
        dirs = []
        for i in range(n_checkpoints):
            dirs.append(Path(tmp) / f"step{i}")
            dirs[-1].mkdir()
            tensors = {k: rng.standard_normal(s, dtype=np.float32) for k, s in names.items()}
            save_file(tensors, str(dirs[-1] / "model.safetensors"))
        size = sum(4 * int(np.prod(s)) for s in names.values())
        prints = []
        hashing = _timed(lambda: prints.extend(fingerprint_checkpoint(p) for p in dirs))
        labels = [f"step{i}" for i in range(n_checkpoints)]
        pairs = list(zip(labels, dirs, strict=True))
        distances = _timed(lambda: weights_dataset(pairs, "m", prints=prints))
    return hashing / (n_checkpoints * size), distances / (checkpoint_reads(n_checkpoints) * size)


def checkpoint_reads(n: int) -> int:
    """Checkpoints the weights job reads for a sweep of ``n``: each once as the target of its
    comparisons, and the reference of each pair once more."""
    from repgeom.activations.weights import _pairs

    return n + len(_pairs(n))


def _fastest(fn: Callable[[], Any], repeats: int, enough: float = 5.0) -> float:
    """The fewest seconds ``fn()`` takes in up to ``repeats`` runs (a shared machine's other
    work only ever adds to one), once when a run takes ``enough`` seconds; its progress bars on
    stderr dropped."""
    best = float("inf")
    with contextlib.redirect_stderr(io.StringIO()):
        for _ in range(repeats):
            best = min(best, _timed(fn))
            if best >= enough:
                break
    return best


def measure_training(
    cfg: Any,
    training: Mapping[str, Any],
    window: int,
    steps: tuple[int, int] = (2, 10),
    repeats: int = 2,
) -> tuple[float, float, float]:
    """(seconds per step, seconds per checkpoint, seconds building the model) of training a model
    of transformers config ``cfg`` with its ``training`` section, one thread, on random windows
    of ``window`` tokens: the real :func:`repgeom.activations.training.train`, its slope between
    ``steps`` (one checkpoint each) and, for a checkpoint (the eval loss on ``eval_tokens`` and
    ``save_pretrained``), the difference one more checkpoint makes; each run the fastest of
    ``repeats`` (:func:`_fastest`)."""
    import numpy as np
    import torch
    import transformers

    from repgeom.activations.training import TrainConfig, train
    from repgeom.data.tokens import Windows
    from repgeom.options import build

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    model = getattr(transformers, cfg.architectures[0])(cfg)
    load = time.perf_counter() - t0
    base = build(TrainConfig, training, "training", extra=True)
    rng = np.random.default_rng(0)

    def windows(rows: int) -> Windows:
        ids = rng.integers(3, cfg.vocab_size, size=(rows, window)).astype(np.int32)
        return Windows(ids, np.full(rows, window, dtype=np.int32))

    train_w = windows(steps[1] * base.batch_size)
    eval_w = windows(max(1, base.eval_tokens // window))
    ids = {"special": [0, 1, 2], "mask": 2}

    with tempfile.TemporaryDirectory() as tmp:

        def save(step: int, trained: Any) -> None:
            trained.save_pretrained(Path(tmp) / f"step{step}")

        def run(n: int, saved: tuple[int, ...], times: int = repeats) -> float:
            cfg_n = dataclasses.replace(base, steps=n, checkpoints=saved, warmup=1)
            return _fastest(lambda: train(model, train_w, eval_w, ids, cfg_n, save, "cpu"), times)

        lo, hi = steps
        run(1, (1,), 1)  # the first update allocates what the others reuse
        short, long, saved = run(lo, (lo,)), run(hi, (hi,)), run(lo, (0, lo))
    return max(long - short, 1e-9) / (hi - lo), max(saved - short, 0.0), load


# the most sequences a Birth variant's batches are measured with (larger ones are scaled)
BIRTH_MAX_BATCH = 32


def measure_birth(
    settings: Mapping[str, Any],
    iterations: tuple[int, int] = (3, 9),
    max_batch: int = BIRTH_MAX_BATCH,
    repeats: int = 2,
) -> tuple[float, float, int]:
    """(seconds per iteration, seconds per evaluation, parameters) of one Birth variant (its
    resolved settings), one thread: the real :func:`repgeom.birth.train.train_on_language` on
    the bigram language of random text, its slope between ``iterations`` (evaluated at the first
    and last) and the difference evaluating at every iteration makes, each run the fastest of
    ``repeats`` (:func:`_fastest`). Batches of more than ``max_batch`` sequences (training and
    evaluation) are measured at ``max_batch`` and scaled in proportion."""
    import string

    import numpy as np
    import torch

    from repgeom.birth.config import BirthConfig
    from repgeom.birth.data import make_language
    from repgeom.birth.models import build_model
    from repgeom.birth.train import train_on_language
    from repgeom.options import build

    torch.set_num_threads(1)
    cfg = build(BirthConfig, {k: v for k, v in settings.items() if k != "name"}, "birth")
    batch, eval_batch = min(cfg.batch_size, max_batch), min(cfg.eval_batch_size, max_batch)
    rng = np.random.default_rng(0)
    chars = np.array(list(string.ascii_letters + string.digits + string.punctuation + " "))
    language = make_language(["".join(rng.choice(chars, 4000)) for _ in range(8)], cfg.n_vocab)

    def run(n: int, every: int) -> float:
        cfg_n = dataclasses.replace(
            cfg, n_iterations=n, eval_every=every, batch_size=batch, eval_batch_size=eval_batch
        )
        return _fastest(lambda: train_on_language(language, cfg_n, "cpu"), repeats)

    lo, hi = iterations
    short, long, evaluated = run(lo, lo), run(hi, hi), run(lo, 1)
    params = sum(p.numel() for p in build_model(cfg).parameters())
    per_iteration = max(long - short, 1e-9) / (hi - lo) * cfg.batch_size / batch
    per_evaluation = max(evaluated - short, 0.0) / (lo - 1) * cfg.eval_batch_size / eval_batch
    return per_iteration, per_evaluation, params


def lm_head_rows(vocab: int, hidden: int, rows: int = 4096) -> int:
    """Rows of the (``vocab``, ``hidden``) LM head :func:`measure_lm_head` measures on."""
    return min(vocab, max(rows, 4 * hidden))


def measure_lm_head(vocab: int, hidden: int, method: str, rows: int = 4096) -> float:
    """Seconds of the LM-head spectrum (the real
    :func:`repgeom.bottleneck.spectrum.lm_head_spectrum`) of a random (``vocab``, ``hidden``)
    matrix: measured on ``max(rows, 4 × hidden)`` of its rows and scaled by the vocabulary (the
    Gram matrix and the SVD both take time in proportion to V when V ≥ d)."""
    import numpy as np

    from repgeom.bottleneck.spectrum import lm_head_spectrum

    n = lm_head_rows(vocab, hidden, rows)
    w = np.random.default_rng(0).standard_normal((n, hidden), dtype=np.float32)
    return _timed(lambda: lm_head_spectrum(w, method)) * vocab / n


@dataclasses.dataclass
class ArrayStore:
    """An activation store in memory, as the languages metrics read one: per layer, one row per
    sentence (its mean) and one row per token."""

    sentences: Any  # (layer, sentence, hidden)
    tokens: Any  # (layer, token, hidden)

    @property
    def layers(self) -> list[int]:
        return list(range(self.sentences.shape[0]))

    @property
    def n_tokens(self) -> int:
        return int(self.tokens.shape[1])

    @property
    def n_sentences(self) -> int:
        return int(self.sentences.shape[1])

    def read_sentences(self, layer: int) -> Any:
        return self.sentences[layer]

    def read(self, layer: int) -> Any:
        return self.tokens[layer]


def measure_languages(
    hidden: int, sentences: int, tokens: int, options: Mapping[str, Any], boot: int = 10
) -> tuple[float, float]:
    """(seconds per store and layer of the per-language dataset, seconds per minimal-pair set
    and layer of the grammaticality bootstrap) of the languages metrics with ``options`` (the
    config's ``languages``): the real :func:`repgeom.languages.datasets.study_dataset` on a
    group of two random stores of ``sentences`` sentences and ``tokens`` tokens, one layer, and
    :func:`repgeom.languages.datasets.grammaticality_dataset` on one pair set with ``boot``
    resamples, scaled to ``n_boot`` (each resample is one more estimate on each side)."""
    import numpy as np

    from repgeom.languages.datasets import grammaticality_dataset, study_dataset
    from repgeom.languages.estimates import IDFunction

    o = options
    rng = np.random.default_rng(0)
    stores = {
        c: ArrayStore(
            rng.standard_normal((1, sentences, hidden), dtype=np.float32),
            rng.standard_normal((1, tokens, hidden), dtype=np.float32),
        )
        for c in ("a", "b")
    }
    group = {"name": "g", "corpora": ["a", "b"], "reference": "a", "members": ["a", "b"]}
    estimator = (o["id_estimator"], o["id_sample"], o["id_repeats"], o["seed"])
    with_gride = IDFunction(*estimator, gride_scales=o.get("gride_scales", 0))
    with_gride(stores["a"].tokens[0, :64])  # its first call imports the estimator
    metrics = _timed(
        lambda: study_dataset(stores, [group], with_gride, o["knn_k"], o["token_knn_kl"], 0)
    )
    pair = {"name": "p", "corpora": ["a", "b"]}
    grammar = _timed(
        lambda: grammaticality_dataset(stores, [pair], IDFunction(*estimator), boot, 0, o["alpha"])
    )
    return metrics / 2, grammar * (o["n_boot"] + 1) / (boot + 1)


def corpus_sample(
    spec: Mapping[str, Any], every: int = 20, head: int = 256_000
) -> tuple[list[str], float, float]:
    """(documents of a sample of a corpus's text, seconds reading them, the factor from the
    sample to the whole corpus): every ``every``-th standard-library file of a ``python_docs``
    corpus (its docstrings, by the real :func:`repgeom.data.corpus.docstrings`), the first
    ``head`` bytes of a text corpus's files on disk; ([], 0, 0) for any other corpus, or one
    whose files are not there yet."""
    import glob

    from repgeom.data import corpus as C

    if spec["kind"] == "python_docs":
        files = C.stdlib_files()
        sample = files[::every]
        docs: list[str] = []
        read = _timed(
            lambda: docs.extend(d for f in sample for d in C.docstrings(f.read_text("utf-8")))
        )
        scale = sum(f.stat().st_size for f in files) / sum(f.stat().st_size for f in sample)
        return docs, read, scale
    files = sorted(glob.glob(str(spec.get("path") or ""))) if spec["kind"] == "text" else []
    if not files:
        return [], 0.0, 0.0
    total = sum(Path(f).stat().st_size for f in files)
    with open(files[0], "rb") as fh:
        start = fh.read(head)
    docs = []
    text = start.decode(errors="replace")
    read = _timed(lambda: docs.extend(C.split_documents(text, spec.get("split_by", "paragraph"))))
    return docs, read, total / len(start)


def measure_corpus(
    docs: Sequence[str], read_s: float, scale: float, vocab: int, min_frequency: int = 2
) -> tuple[CorpusRates, Any]:
    """A corpus's :class:`CorpusRates` from a sample of its documents (read in ``read_s``, the
    whole corpus ``scale`` times larger): a BPE of ``vocab`` tokens trained on the sample (the
    real :func:`repgeom.data.tokenization.train_bpe`) and the sample tokenized with it (the real
    :func:`repgeom.data.tokens.encode`), neither when ``vocab`` is 0; also the sample's token
    ids, one stream (None without a tokenization)."""
    from repgeom.data.tokenization import train_bpe
    from repgeom.data.tokens import encode

    chars = sum(len(d) for d in docs)
    if not chars:
        return CorpusRates(), None
    if not vocab:  # read, never tokenized
        return CorpusRates(chars * scale, read_s / chars), None
    tok: list[Any] = []
    encoded: list[list[int]] = []
    bpe = _timed(lambda: tok.append(train_bpe(docs, vocab, min_frequency)))
    tokenize = _timed(lambda: encoded.extend(encode(list(docs), tok[0])))
    n = sum(len(e) for e in encoded)
    rates = CorpusRates(chars * scale, read_s / chars, bpe / chars, tokenize / chars, n / chars)
    return rates, [t for e in encoded for t in e]


def measure_ngram(
    ids: Sequence[int], vocab: int, options: Mapping[str, Any], window: int = 64
) -> tuple[float, float]:
    """(seconds, seconds per token) of the n-gram W-error (the real
    :func:`repgeom.bottleneck.ngram_werror.wrank_estimate` with the config's
    ``bottleneck.ngram``) on a corpus's sample of token ``ids`` in windows of ``window``: a
    fixed part and a slope per token, from half the sample and the whole."""
    import numpy as np

    from repgeom.bottleneck.ngram_werror import wrank_estimate
    from repgeom.bottleneck.options import NgramOptions
    from repgeom.options import build

    o = dataclasses.replace(
        build(NgramOptions, options, "bottleneck.ngram", extra=True), max_tokens=None
    )
    rows = len(ids) // window
    w = np.asarray(ids[: rows * window], dtype=np.int32).reshape(rows, window)
    half = max(1, rows // 2)
    wrank_estimate(w[: max(1, rows // 8)], vocab, o)  # its first call imports what it needs
    small = _timed(lambda: wrank_estimate(w[:half], vocab, o))
    large = _timed(lambda: wrank_estimate(w, vocab, o))
    per_token = max(large - small, 1e-9) / max((rows - half) * window, 1)
    return max(small - half * window * per_token, 0.0), per_token
