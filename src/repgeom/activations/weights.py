"""Checkpoint integrity: fingerprints of the stored weights, duplicates, and distances over a sweep.

Published checkpoint suites serve the same weights under different labels (every Pythia model's
step0 = step1 = step2; pythia-2.8b's final-era weights on early branches; pythia-12b
step50000/58000 holding the final model's first shard; three byte-identical OLMo-2-7B stage-1
branches). A sweep over them would count duplicates as science, so every checkpoint is read here
from its files alone, one tensor at a time (memory-mapped, never two checkpoints in memory):

- a **tensor fingerprint**: sha256 over the dtype, the shape and the stored bytes (exact, every
  byte; no sketch). The name is not part of it, so the same tensor under another name hashes the
  same; the name enters the **checkpoint fingerprint**: sha256 over the sorted (name, tensor
  fingerprint) pairs, the same however the files are sharded and ordered, safetensors or .bin;
- **duplicates**: ``duplicate_of`` of a checkpoint is the earliest one with the same checkpoint
  fingerprint (every tensor identical). **Partial duplicates**: ``partial_duplicate_of`` of a
  checkpoint is the later checkpoint, not its full duplicate, sharing the most tensors with it
  (same name, same tensor fingerprint; the earliest on ties), the earlier one marked (in the
  known cases an early label serves later weights). A tensor unchanged from the first
  checkpoint through the later of the two does not count (frozen layers, LayerNorm at init
  that float16 steps do not move yet, a frozen embedding; one identical in every checkpoint
  never counts);
- **distances**: relative L2 ‖θ_t − θ_ref‖ / ‖θ_ref‖ over the floating-point tensors, accumulated
  in float64 tensor by tensor (stored values are exact in float64), to the first, previous and
  last checkpoint, whole and per tensor group, and the cosine to the first checkpoint;
- **discontinuities**: a checkpoint farther than ``factor`` × the distance between its two
  neighbours from each of them (a jump out of the run and back).

Weight files read: ``model.safetensors``, ``model.safetensors.index.json`` and its shards,
``pytorch_model.bin``, ``pytorch_model.bin.index.json`` and its shards (safetensors first, as
transformers loads them), in the folder a sentence-transformers directory names for its
transformer. torch is imported only for .bin files and float8 tensors.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import struct
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from repgeom.activations.checkpoint import transformer_subfolder
from repgeom.activations.size import safetensors_header
from repgeom.steps import Checkpoint, as_checkpoints, step_coords

DISCONTINUITY_FACTOR = 2.0
CHUNK = 1 << 16  # elements converted to float64 at a time (four 512 KiB buffers: cache-sized)
FINGERPRINT_VERSION = "repgeom-tensor-v1"

GROUPS = ("embeddings", "attention", "mlp", "norms", "head", "other")
# first match wins; a pattern matches one dotted component of the tensor name
GROUP_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # GPT-NeoX embed_out, lm_head (+ RoBERTa's lm_head.dense/layer_norm), BERT cls.*, pooler
    ("head", re.compile(r"(?:^|\.)(?:lm_head|embed_out|cls|pooler|score)(?:\.|$)")),
    # LayerNorm, layernorm, input_layernorm, final_layer_norm, model.norm, q_norm, ln_1, ln_f
    ("norms", re.compile(r"(?:^|\.)(?:\w*norm\w*|ln_\w+|ln\d*)(?:\.|$)", re.IGNORECASE)),
    # GPT-NeoX embed_in, GPT-2 wte/wpe, Llama embed_tokens, BERT embeddings.*
    ("embeddings", re.compile(r"(?:^|\.)(?:embed_in|embed_tokens|wte|wpe|embeddings?)(?:\.|$)")),
    # attention, attn, self_attn, c_attn, q_proj/k_proj/v_proj/o_proj, qkv_proj
    (
        "attention",
        re.compile(r"(?:^|\.)(?:\w*attn\w*|\w*attention\w*|[qkvo]_proj|qkv_proj)(?:\.|$)"),
    ),
    # mlp, c_fc, dense_h_to_4h, gate_up_proj; BERT intermediate.dense and output.dense
    (
        "mlp",
        re.compile(
            r"(?:^|\.)(?:mlp|intermediate|output|feed_forward|ffn|experts|c_fc|fc\d|"
            r"gate_proj|up_proj|down_proj|gate_up_proj|dense_h_to_4h|dense_4h_to_h)(?:\.|$)"
        ),
    ),
)
# stored buffers that are no parameters: causal masks, GPT-NeoX's masked_bias (-1e9, which
# would swamp a norm), rotary frequencies, position ids. Hashed, never measured.
BUFFERS = re.compile(
    r"(?:^|\.)(?:masked_bias|inv_freq|position_ids)$|(?:^|\.)(?:attn|attention)\.bias$"
)

# safetensors dtype code -> (numpy dtype of the stored bits, bytes per element, floating)
DTYPES: dict[str, tuple[str, int, bool]] = {
    "F64": ("<f8", 8, True),
    "F32": ("<f4", 4, True),
    "F16": ("<f2", 2, True),
    "BF16": ("<u2", 2, True),
    "F8_E4M3": ("u1", 1, True),
    "F8_E5M2": ("u1", 1, True),
    "I64": ("<i8", 8, False),
    "I32": ("<i4", 4, False),
    "I16": ("<i2", 2, False),
    "I8": ("i1", 1, False),
    "U64": ("<u8", 8, False),
    "U32": ("<u4", 4, False),
    "U16": ("<u2", 2, False),
    "U8": ("u1", 1, False),
    "BOOL": ("u1", 1, False),
}
TORCH_DTYPES = {  # torch dtype name -> safetensors code (for .bin files)
    "float64": "F64",
    "float32": "F32",
    "float16": "F16",
    "bfloat16": "BF16",
    "float8_e4m3fn": "F8_E4M3",
    "float8_e5m2": "F8_E5M2",
    "int64": "I64",
    "int32": "I32",
    "int16": "I16",
    "int8": "I8",
    "uint64": "U64",
    "uint32": "U32",
    "uint16": "U16",
    "uint8": "U8",
    "bool": "BOOL",
}


def tensor_group(name: str) -> str:
    """The group of a tensor name: embeddings, attention, mlp, norms, head, or other."""
    for group, pattern in GROUP_PATTERNS:
        if pattern.search(name):
            return group
    return "other"


def is_buffer(name: str) -> bool:
    """Whether a stored tensor is a buffer (mask, rotary frequencies, ids), not a parameter."""
    return BUFFERS.search(name) is not None


@dataclass(frozen=True)
class StoredTensor:
    """One tensor as stored: its name, safetensors dtype code, shape and raw bytes (a view)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    raw: np.ndarray  # 1-D uint8, little-endian bytes, usually a view of a memory map

    @property
    def size(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)

    @property
    def measured(self) -> bool:
        """Whether the tensor enters the distances: a floating-point parameter."""
        return DTYPES[self.dtype][2] and not is_buffer(self.name)

    def fingerprint(self) -> str:
        """sha256 (hex) over the dtype, the shape and the stored bytes; the name is not in it."""
        h = hashlib.sha256(f"{FINGERPRINT_VERSION}\0{self.dtype}\0{list(self.shape)}\0".encode())
        h.update(memoryview(self.raw))
        return h.hexdigest()

    def float64(self, start: int, stop: int, out: np.ndarray) -> np.ndarray:
        """Elements [start, stop) of the flattened tensor, exactly, into ``out`` (float64)."""
        code, width, _ = DTYPES[self.dtype]
        bits = self.raw[start * width : stop * width].view(code)
        dest = out[: stop - start]
        if self.dtype == "BF16":
            dest[...] = (bits.astype(np.uint32) << 16).view(np.float32)
        elif self.dtype.startswith("F8"):
            import torch

            kind = torch.float8_e4m3fn if self.dtype == "F8_E4M3" else torch.float8_e5m2
            dest[...] = torch.from_numpy(bits.copy()).view(kind).to(torch.float64).numpy()
        else:
            dest[...] = bits
        return dest


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def transformer_dir(directory: str | Path) -> Path:
    """Where a checkpoint directory keeps its transformer (a sentence-transformers subfolder)."""
    root = Path(directory)
    sub = transformer_subfolder(_read_json(root / "modules.json"))
    return root / sub if sub else root


def stored_weight_files(directory: str | Path) -> list[Path]:
    """Weight files of a checkpoint (safetensors, else .bin; single or sharded), or raise."""
    root = transformer_dir(directory)
    for single, index in (
        ("model.safetensors", "model.safetensors.index.json"),
        ("pytorch_model.bin", "pytorch_model.bin.index.json"),
    ):
        if (root / single).is_file():
            return [root / single]
        if (root / index).is_file():
            weight_map = (_read_json(root / index) or {}).get("weight_map") or {}
            shards = sorted(set(weight_map.values()))
            absent = [s for s in shards if not (root / s).is_file()]
            if not shards or absent:
                raise FileNotFoundError(
                    f"{root / index} names shards that are not there: {absent or 'none at all'}"
                )
            return [root / s for s in shards]
    raise FileNotFoundError(
        f"{root} holds no weights: expected model.safetensors, model.safetensors.index.json, "
        "pytorch_model.bin or pytorch_model.bin.index.json"
    )


def _safetensors_entries(path: Path) -> list[tuple[str, str, tuple[int, ...], int, int]]:
    """(name, dtype, shape, start, stop) of each tensor of a safetensors file, in file order."""
    try:
        header = safetensors_header(path)
    except ValueError as err:
        raise ValueError(f"{path} cannot be read: {err}") from None
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
    entries = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype, shape = str(info["dtype"]), tuple(int(d) for d in info["shape"])
        if dtype not in DTYPES:
            raise ValueError(f"{path}: tensor {name} has dtype {dtype}, which repgeom cannot read")
        begin, end = (int(v) for v in info["data_offsets"])
        if end - begin != math.prod(shape) * DTYPES[dtype][1]:
            raise ValueError(f"{path}: tensor {name} holds {end - begin} bytes, not {dtype}{shape}")
        entries.append((name, dtype, shape, 8 + length + begin, 8 + length + end))
    return sorted(entries, key=lambda e: e[3])


def _bin_tensors(path: Path) -> Iterator[StoredTensor]:
    """The tensors of a torch .bin state dict (memory-mapped), each stored storage once."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    except Exception as err:  # a corrupt or legacy (non-zip) file: say which
        raise ValueError(f"{path} cannot be read as a torch state dict: {err}") from None
    seen: set[tuple[int, int, tuple[int, ...], tuple[int, ...]]] = set()
    for name, t in state.items():
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{path}: entry {name} is a {type(t).__name__}, not a tensor")
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride())
        if key in seen:
            continue  # a tied weight: the same storage under a second name
        seen.add(key)
        dtype = TORCH_DTYPES.get(str(t.dtype).removeprefix("torch."))
        if dtype is None:
            raise ValueError(
                f"{path}: tensor {name} has dtype {t.dtype}, which repgeom cannot read"
            )
        raw = t.contiguous().reshape(-1).view(torch.uint8).numpy()
        yield StoredTensor(str(name), dtype, tuple(t.shape), raw)


class StoredWeights:
    """The tensors stored in one checkpoint directory, memory-mapped, readable one at a time."""

    def __init__(self, directory: str | Path) -> None:
        """Index the weight files of ``directory`` (headers only for safetensors)."""
        self.directory = Path(directory)
        self.files = stored_weight_files(directory)
        self._safetensors: dict[str, tuple[Path, str, tuple[int, ...], int, int]] = {}
        self._maps: dict[Path, np.ndarray] = {}
        self._bin: dict[str, StoredTensor] = {}
        for path in self.files:
            if path.suffix == ".safetensors":
                for name, dtype, shape, start, stop in _safetensors_entries(path):
                    self._add(name, path, (path, dtype, shape, start, stop))
            else:
                for t in _bin_tensors(path):
                    self._add(t.name, path, t)

    def _add(self, name: str, path: Path, entry: Any) -> None:
        if name in self._safetensors or name in self._bin:
            raise ValueError(f"{self.directory}: tensor {name} is stored twice (again in {path})")
        if isinstance(entry, StoredTensor):
            self._bin[name] = entry
        else:
            self._safetensors[name] = entry

    def names(self) -> list[str]:
        """Tensor names in file order."""
        return [*self._safetensors, *self._bin]

    def __getitem__(self, name: str) -> StoredTensor:
        """One tensor, its bytes a view of the file's memory map."""
        if name in self._bin:
            return self._bin[name]
        path, dtype, shape, start, stop = self._safetensors[name]
        if path not in self._maps:
            self._maps[path] = np.memmap(path, dtype=np.uint8, mode="r")
        return StoredTensor(name, dtype, shape, self._maps[path][start:stop])

    def __iter__(self) -> Iterator[StoredTensor]:
        """Every stored tensor, in file order."""
        return (self[name] for name in self.names())

    def real_files(self) -> tuple[str, ...]:
        """The weight files' resolved paths (a hub revision's files resolve into blobs/)."""
        return tuple(sorted(os.path.realpath(p) for p in self.files))


def checkpoint_directory(path_or_id: str, revision: str | None, commit: str | None) -> Path:
    """The directory of one checkpoint: a local one as it is; a hub revision's snapshot in the
    HF cache (its config and weight files fetched when not cached, unless HF_HUB_OFFLINE)."""
    if revision is None:
        return Path(path_or_id)
    from huggingface_hub import snapshot_download

    for weights in ("*.safetensors", "*.bin"):  # safetensors first, as transformers loads them
        folder = Path(
            snapshot_download(
                path_or_id, revision=commit or revision, allow_patterns=["*.json", weights]
            )
        )
        try:
            stored_weight_files(folder)
        except FileNotFoundError:
            continue
        return folder
    return folder  # the caller's read names what is missing


def _weights(source: str | Path | StoredWeights) -> StoredWeights:
    return source if isinstance(source, StoredWeights) else StoredWeights(source)


def _map(fn: Any, items: Sequence[Any], threads: int) -> list[Any]:
    if threads <= 1 or len(items) < 2:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(threads) as pool:  # hashing and numpy loops release the GIL
        return list(pool.map(fn, items))


def tensor_fingerprints(source: str | Path | StoredWeights, threads: int = 1) -> dict[str, str]:
    """Fingerprint of every tensor stored in a checkpoint directory, by name (file order)."""
    weights = _weights(source)
    names = weights.names()
    return dict(zip(names, _map(lambda n: weights[n].fingerprint(), names, threads), strict=True))


def checkpoint_fingerprint(tensors: Mapping[str, str]) -> str:
    """sha256 over the sorted (name, tensor fingerprint) pairs: independent of sharding."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(f"{name}\t{tensors[name]}\n".encode())
    return h.hexdigest()


@dataclass(frozen=True)
class CheckpointWeights:
    """One checkpoint's fingerprint, its tensors' fingerprints and the files read."""

    fingerprint: str
    tensors: dict[str, str]
    files: tuple[str, ...] = ()


def fingerprint_checkpoint(
    directory: str | Path | StoredWeights, threads: int = 1
) -> CheckpointWeights:
    """The fingerprints of one checkpoint directory (every stored tensor hashed once)."""
    weights = _weights(directory)
    tensors = tensor_fingerprints(weights, threads)
    return CheckpointWeights(checkpoint_fingerprint(tensors), tensors, weights.real_files())


@dataclass(frozen=True)
class Duplicates:
    """Duplicates among a model's checkpoints, by label ('' where none)."""

    duplicate_of: dict[str, str]
    partial_duplicate_of: dict[str, str]
    partial_tensors: dict[str, list[str]] = field(default_factory=dict)


def find_duplicates(labels: Sequence[str], checkpoints: Sequence[CheckpointWeights]) -> Duplicates:
    """Full and partial duplicates of an ordered sweep, by the rules of the module docstring."""
    labels = [str(x) for x in labels]
    if len(labels) != len(checkpoints):
        raise ValueError(f"{len(labels)} labels for {len(checkpoints)} checkpoints")
    first_of: dict[str, str] = {}
    duplicate_of = {}
    for label, ckpt in zip(labels, checkpoints, strict=True):
        duplicate_of[label] = first_of.setdefault(ckpt.fingerprint, label)
        if duplicate_of[label] == label:
            duplicate_of[label] = ""
    # frozen_until[name]: the last index through which the tensor equals the first checkpoint's
    frozen_until: dict[str, int] = {}
    first = checkpoints[0].tensors if checkpoints else {}
    for name, digest in first.items():
        i = 0
        while i + 1 < len(checkpoints) and checkpoints[i + 1].tensors.get(name) == digest:
            i += 1
        frozen_until[name] = i
    partial_of = dict.fromkeys(labels, "")
    partial_tensors: dict[str, list[str]] = {label: [] for label in labels}
    for i, (label, ckpt) in enumerate(zip(labels, checkpoints, strict=True)):
        best: list[str] = []
        for j in range(i + 1, len(checkpoints)):
            other = checkpoints[j]
            if other.fingerprint == ckpt.fingerprint:
                continue
            shared = sorted(
                name
                for name, digest in ckpt.tensors.items()
                if other.tensors.get(name) == digest and frozen_until.get(name, -1) < j
            )
            if len(shared) > len(best):
                best, partial_of[label] = shared, labels[j]
        partial_tensors[label] = best
    return Duplicates(duplicate_of, partial_of, partial_tensors)


@dataclass(frozen=True)
class PairStats:
    """Float64 sums per tensor group between a target and a reference checkpoint."""

    sq_diff: np.ndarray  # Σ (θ_t − θ_ref)² per group
    dot: np.ndarray  # Σ θ_t θ_ref
    norm_target: np.ndarray  # Σ θ_t²
    norm_ref: np.ndarray  # Σ θ_ref²
    count: np.ndarray  # elements measured per group

    def distance(self, relative_to: str = "ref", by_group: bool = False) -> Any:
        """‖θ_t − θ_ref‖ over the norm of 'ref', 'target' or 'none'; whole or per group."""
        norm = {"ref": self.norm_ref, "target": self.norm_target, "none": None}[relative_to]
        return _ratio(self.sq_diff, norm, by_group, self.count)

    def cosine(self, by_group: bool = False) -> Any:
        """Cosine between the two checkpoints' parameter vectors (whole or per group)."""
        num = self.dot if by_group else self.dot.sum()
        den = (
            self.norm_target * self.norm_ref
            if by_group
            else (self.norm_target.sum() * self.norm_ref.sum())
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.asarray(num, dtype=np.float64) / np.sqrt(den)
        if by_group:
            return np.where(self.count > 0, out, np.nan)
        return float(out) if self.count.sum() else math.nan

    def swapped(self) -> PairStats:
        """The same sums with target and reference exchanged."""
        return PairStats(self.sq_diff, self.dot, self.norm_ref, self.norm_target, self.count)


def _ratio(sq: np.ndarray, norm: np.ndarray | None, by_group: bool, count: np.ndarray) -> Any:
    num = sq if by_group else sq.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (
            np.sqrt(num)
            if norm is None
            else np.sqrt(num) / np.sqrt(norm if by_group else norm.sum())
        )
    if by_group:
        return np.where(count > 0, out, np.nan)
    return float(out) if count.sum() else math.nan


def _check_same_tensors(target: StoredWeights, ref: StoredWeights) -> None:
    t, r = set(target.names()), set(ref.names())
    if t != r:
        only_t, only_r = sorted(t - r)[:5], sorted(r - t)[:5]
        raise ValueError(
            f"{target.directory} and {ref.directory} store different tensors (only in the first: "
            f"{only_t}, only in the second: {only_r}): their distance is not defined"
        )


def _dot(x: np.ndarray, y: np.ndarray, scratch: np.ndarray) -> float:
    """Σ x·y by numpy's pairwise summation (BLAS ddot's threads stall on a shared machine)."""
    return float(np.multiply(x, y, out=scratch).sum())


def _sums(
    tw: StoredWeights, rws: Sequence[StoredWeights], threads: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sums (reference, [Σd², Σθ_tθ_r, Σθ_r²], group), Σθ_t² per group, elements per group)."""
    for rw in rws:
        _check_same_tensors(tw, rw)
    names = [n for n in tw.names() if tw[n].measured]

    def one(name: str) -> tuple[int, np.ndarray, float, int]:
        """(group, sums against each reference, Σθ_t², elements) of one tensor."""
        a = tw[name]
        bs = [rw[name] for rw in rws]
        for rw, b in zip(rws, bs, strict=True):
            if b.shape != a.shape:
                raise ValueError(
                    f"tensor {name} has shape {a.shape} in {tw.directory} and {b.shape} in "
                    f"{rw.directory}"
                )
        n = a.size
        size = min(CHUNK, max(n, 1))
        bufa, bufb, diff, prod = (np.empty(size) for _ in range(4))
        sums = np.zeros((len(bs), 3))  # Σd², Σab, Σb²
        norm_a = 0.0
        for start in range(0, n, CHUNK):
            stop = min(n, start + CHUNK)
            va = a.float64(start, stop, bufa)
            p = prod[: stop - start]
            norm_a += _dot(va, va, p)
            for j, b in enumerate(bs):
                vb = b.float64(start, stop, bufb)
                d = np.subtract(va, vb, out=diff[: stop - start])
                sums[j, 0] += _dot(d, d, p)
                sums[j, 1] += _dot(va, vb, p)
                sums[j, 2] += _dot(vb, vb, p)
        return GROUPS.index(tensor_group(name)), sums, norm_a, n

    g = len(GROUPS)
    acc = np.zeros((len(rws), 3, g))
    norm_t, count = np.zeros(g), np.zeros(g, dtype=np.int64)
    for group, sums, norm_a, n in _map(one, names, threads):  # summed in file order
        acc[:, :, group] += sums
        norm_t[group] += norm_a
        count[group] += n
    return acc, norm_t, count


def compare(
    target: str | Path | StoredWeights,
    refs: Sequence[str | Path | StoredWeights],
    threads: int = 1,
) -> list[PairStats]:
    """Float64 sums between a checkpoint and each reference, in one pass over its tensors."""
    acc, norm_t, count = _sums(_weights(target), [_weights(r) for r in refs], threads)
    return [PairStats(acc[j, 0], acc[j, 1], norm_t, acc[j, 2], count) for j in range(len(acc))]


def parameter_norms(
    source: str | Path | StoredWeights, threads: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """(Σθ², elements) per tensor group of one checkpoint's floating-point parameters."""
    _, norm, count = _sums(_weights(source), [], threads)
    return norm, count


def discontinuities(
    to_previous: Sequence[float],
    to_next: Sequence[float],
    between_neighbours: Sequence[float],
    factor: float = DISCONTINUITY_FACTOR,
) -> np.ndarray:
    """True where d(t−1,t) and d(t,t+1) both exceed factor·d(t−1,t+1); NaN gives False."""
    a, b, c = (np.asarray(v, dtype=np.float64) for v in (to_previous, to_next, between_neighbours))
    with np.errstate(invalid="ignore"):
        return (a > factor * c) & (b > factor * c)


def _pairs(n: int) -> set[tuple[int, int]]:
    """(earlier, later) index pairs a sweep needs: to first, previous, last, and neighbours."""
    pairs = set()
    for t in range(n):
        for r in (0, t - 1, n - 1, t - 2):
            if 0 <= r < n and r != t:
                pairs.add((min(r, t), max(r, t)))
    return pairs


def sweep_stats(
    directories: Sequence[str | Path],
    fingerprints: Sequence[str] | None = None,
    threads: int = 1,
) -> tuple[dict[tuple[int, int], PairStats], list[np.ndarray], np.ndarray]:
    """Pair sums a sweep needs (same fingerprint: not read), Σθ² per checkpoint, elements."""
    n = len(directories)
    fps = list(fingerprints) if fingerprints is not None else [str(i) for i in range(n)]
    pairs = _pairs(n)
    stats: dict[tuple[int, int], PairStats] = {}
    norms: dict[str, np.ndarray] = {}
    count = np.zeros(len(GROUPS), dtype=np.int64)
    for t in range(n):
        refs = sorted(r for r, later in pairs if later == t and fps[r] != fps[t])
        if not refs:
            continue
        found = compare(directories[t], [directories[r] for r in refs], threads)
        for r, s in zip(refs, found, strict=True):
            stats[(r, t)] = s
            norms.setdefault(fps[r], s.norm_ref)
            norms.setdefault(fps[t], s.norm_target)
            count = s.count
    for t in range(n):  # identical to every checkpoint it is compared with: a pass of its own
        if fps[t] not in norms:
            norms[fps[t]], count = parameter_norms(directories[t], threads)
    for r, t in pairs:
        if (r, t) not in stats:  # the same fingerprint: the same tensors
            nt = norms[fps[t]]
            stats[(r, t)] = PairStats(np.zeros(len(GROUPS)), nt, nt, nt, count)
    return stats, [norms[fps[t]] for t in range(n)], count


def _attrs(long_name: str, units: str = "1") -> dict[str, str]:
    return {"long_name": long_name, "units": units}


def weight_record(weights: CheckpointWeights) -> dict[str, Any]:
    """A checkpoint's fingerprints as JSON (what the fingerprint job writes)."""
    return {
        "version": FINGERPRINT_VERSION,
        "fingerprint": weights.fingerprint,
        "tensors": dict(weights.tensors),
        "files": list(weights.files),
    }


def read_weight_record(record: Mapping[str, Any]) -> CheckpointWeights:
    """The :class:`CheckpointWeights` of a :func:`weight_record`; ValueError for another
    fingerprint version (the record was written by another repgeom)."""
    if record.get("version") != FINGERPRINT_VERSION:
        raise ValueError(
            f"fingerprint record of version {record.get('version')!r}, expected "
            f"{FINGERPRINT_VERSION!r}: delete it and rerun snakemake"
        )
    return CheckpointWeights(
        str(record["fingerprint"]), dict(record["tensors"]), tuple(record.get("files", ()))
    )


def read_weight_records(paths: Sequence[str | Path]) -> list[CheckpointWeights]:
    """The :class:`CheckpointWeights` of fingerprint files (:func:`weight_record` as JSON)."""
    return [read_weight_record(json.loads(Path(p).read_text())) for p in paths]


def sweep_fingerprints(
    directories: Sequence[str | Path], threads: int = 1
) -> list[CheckpointWeights]:
    """Fingerprints of a sweep; hub revisions resolving to the same blobs are hashed once."""
    by_files: dict[tuple[str, ...], CheckpointWeights] = {}
    prints = []
    for d in directories:
        weights = StoredWeights(d)
        key = weights.real_files()
        if key not in by_files:
            by_files[key] = fingerprint_checkpoint(weights, threads)
        prints.append(by_files[key])
    return prints


def integrity_dataset(
    checkpoints: Sequence[str | Checkpoint], prints: Sequence[CheckpointWeights], model: str = ""
) -> xr.Dataset:
    """Fingerprints, duplicates and partial duplicates of a model's checkpoints (in training
    order) over ``step``: what the gate reads, from the fingerprints alone."""
    ckpts = as_checkpoints(checkpoints)
    labels = [c.label for c in ckpts]
    dups = find_duplicates(labels, prints)
    data_vars: dict[str, Any] = {
        "fingerprint": (
            "step",
            np.array([p.fingerprint for p in prints], dtype=object),
            _attrs("sha256 over the sorted (tensor name, tensor sha256) pairs", ""),
        ),
        "n_tensors": ("step", [len(p.tensors) for p in prints], _attrs("tensors stored", "")),
        "duplicate_of": (
            "step",
            np.array([dups.duplicate_of[x] for x in labels], dtype=object),
            _attrs("earliest checkpoint with identical weights ('' = none)", ""),
        ),
        "partial_duplicate_of": (
            "step",
            np.array([dups.partial_duplicate_of[x] for x in labels], dtype=object),
            _attrs("later checkpoint sharing tensors with this one ('' = none)", ""),
        ),
        "partial_duplicate_tensors": (
            "step",
            np.array([",".join(dups.partial_tensors[x]) for x in labels], dtype=object),
            _attrs("tensors shared with partial_duplicate_of, comma-separated", ""),
        ),
    }
    return xr.Dataset(
        data_vars,
        coords=step_coords(ckpts),
        attrs={
            "model": model,
            "fingerprint": (
                "tensor: sha256 over dtype, shape and stored bytes (name excluded); checkpoint: "
                "sha256 over the sorted (name, tensor sha256) pairs"
            ),
        },
    )


def _pair(stats: Mapping[tuple[int, int], PairStats], n: int, t: int, r: int) -> PairStats | None:
    """Sums with t the target and r the reference (None when r is out of range or is t)."""
    if not 0 <= r < n:
        return None
    if r == t:
        return None
    s = stats[(min(r, t), max(r, t))]
    return s if t > r else s.swapped()


@dataclass(frozen=True)
class _SweepDistances:
    """The distances and cosines of a sweep's checkpoints, by step (and group)."""

    whole: dict[str, np.ndarray]  # relative, to 'first', 'previous', 'last'; 'neighbours'
    grouped: dict[str, np.ndarray]  # relative, per group, to 'first', 'previous', 'last'
    cos: np.ndarray  # cosine to the first
    cos_g: np.ndarray  # cosine to the first, per group
    absolute: dict[str, np.ndarray]  # to 'previous', 'next'; between the 'neighbours'


def _sweep_distances(
    stats: Mapping[tuple[int, int], PairStats],
    norms: Sequence[np.ndarray],
    count: np.ndarray,
    n: int,
) -> _SweepDistances:
    """Every checkpoint's distances to the first, previous and last (0 to itself, NaN with
    nothing measured), its cosine to the first and, inside the sweep, the absolute distances
    :func:`discontinuities` compares."""
    g = len(GROUPS)
    whole = {k: np.full(n, np.nan) for k in ("first", "previous", "last", "neighbours")}
    grouped = {k: np.full((n, g), np.nan) for k in ("first", "previous", "last")}
    cos, cos_g = np.full(n, np.nan), np.full((n, g), np.nan)
    absolute = {k: np.full(n, np.nan) for k in ("previous", "next", "neighbours")}
    for t in range(n):
        for key, r in (("first", 0), ("previous", t - 1), ("last", n - 1)):
            s = _pair(stats, n, t, r)
            if s is not None:
                whole[key][t] = s.distance("ref")
                grouped[key][t] = s.distance("ref", by_group=True)
            elif r == t:
                whole[key][t] = 0.0 if count.sum() else np.nan
                grouped[key][t] = np.where(count > 0, 0.0, np.nan)
        s = _pair(stats, n, t, 0)
        if s is not None:
            cos[t], cos_g[t] = s.cosine(), s.cosine(by_group=True)
        else:  # the first checkpoint against itself
            itself = PairStats(np.zeros(g), norms[t], norms[t], norms[t], count)
            cos[t], cos_g[t] = itself.cosine(), itself.cosine(by_group=True)
        if 0 < t < n - 1:
            s = _pair(stats, n, t + 1, t - 1)
            assert s is not None
            whole["neighbours"][t] = s.distance("ref")
            absolute["neighbours"][t] = s.distance("none")
            before, after = _pair(stats, n, t, t - 1), _pair(stats, n, t + 1, t)
            absolute["previous"][t] = before.distance("none")  # type: ignore[union-attr]
            absolute["next"][t] = after.distance("none")  # type: ignore[union-attr]
    return _SweepDistances(whole, grouped, cos, cos_g, absolute)


def _distance_variables(d: _SweepDistances, jumps: np.ndarray, factor: float) -> dict[str, Any]:
    """The ``weights`` dataset's distance, cosine and discontinuity variables."""
    where = {
        "first": "the first checkpoint",
        "previous": "the previous checkpoint",
        "last": "the last checkpoint",
    }
    data_vars: dict[str, Any] = {}
    for key, text in where.items():
        data_vars[f"distance_to_{key}"] = (
            "step",
            d.whole[key],
            _attrs(f"relative L2 distance ‖θ − θ_ref‖ / ‖θ_ref‖ to {text}"),
        )
        data_vars[f"distance_to_{key}_by_group"] = (
            ("step", "group"),
            d.grouped[key],
            _attrs(f"relative L2 distance to {text}, per tensor group"),
        )
    data_vars["distance_between_neighbours"] = (
        "step",
        d.whole["neighbours"],
        _attrs("relative L2 distance between the previous and the next checkpoint"),
    )
    data_vars["cosine_to_first"] = (
        "step",
        d.cos,
        _attrs("cosine between the parameter vectors and the first checkpoint's"),
    )
    data_vars["cosine_to_first_by_group"] = (
        ("step", "group"),
        d.cos_g,
        _attrs("cosine to the first checkpoint, per tensor group"),
    )
    data_vars["discontinuity"] = (
        "step",
        jumps,
        _attrs(
            f"farther than {factor:g}× the distance between its neighbours from each of them", ""
        ),
    )
    return data_vars


def weights_dataset(
    checkpoints: Sequence[tuple[str | Checkpoint, str | Path]],
    model: str = "",
    factor: float = DISCONTINUITY_FACTOR,
    threads: int = 1,
    prints: Sequence[CheckpointWeights] | None = None,
) -> xr.Dataset:
    """The ``weights`` dataset of a model's (label, directory) checkpoints in training order:
    :func:`integrity_dataset` and the distances (``prints``: fingerprints already taken)."""
    ckpts = as_checkpoints([c for c, _ in checkpoints])
    dirs = [Path(d) for _, d in checkpoints]
    prints = list(prints) if prints is not None else sweep_fingerprints(dirs, threads)
    base = integrity_dataset(ckpts, prints, model)
    fps = [p.fingerprint for p in prints]
    stats, norms, count = sweep_stats(dirs, fps, threads)
    d = _sweep_distances(stats, norms, count, len(ckpts))
    absolute = d.absolute
    jumps = discontinuities(absolute["previous"], absolute["next"], absolute["neighbours"], factor)
    coords: dict[str, Any] = {
        "group": ("group", list(GROUPS), _attrs("tensor group (by tensor name)", "")),
        "n_parameters": ("group", count, _attrs("floating-point elements measured", "")),
    }
    out = base.assign(_distance_variables(d, jumps, factor)).assign_coords(coords)
    out.attrs.update(
        discontinuity_factor=float(factor),
        distances=(
            "float64 sums over the floating-point parameters stored (buffers excluded), "
            "tensor by tensor"
        ),
    )
    return out


def _join(labels: Sequence[str]) -> str:
    return labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} and {labels[-1]}"


def duplicates_message(
    model: str, ds: xr.Dataset, labels_key: str = "revisions", partial: bool = True
) -> str:
    """The gate's message ('' if none): labels sharing weights, fingerprint, two ways out."""
    labels = [str(s) for s in ds["step"].values]
    dup = dict(zip(labels, (str(v) for v in ds["duplicate_of"].values), strict=True))
    fps = dict(zip(labels, (str(v) for v in ds["fingerprint"].values), strict=True))
    lines, drop = [], []
    for original in labels:
        copies = [x for x in labels if dup[x] == original]
        if copies:
            verb = "holds" if len(copies) == 1 else "hold"
            lines.append(
                f"{_join(copies)} {verb} the same weights as {original} "
                f"(fingerprint {fps[original][:12]})"
            )
            drop += copies
    if partial and "partial_duplicate_of" in ds:
        shared = ds["partial_duplicate_tensors"].values
        for label, other, names in zip(
            labels, ds["partial_duplicate_of"].values, shared, strict=True
        ):
            if str(other):
                names = str(names).split(",")
                listed = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if names[3:] else "")
                lines.append(
                    f"{label} holds {len(names)} tensor(s) of {other} ({listed}) "
                    f"(fingerprint {fps[label][:12]})"
                )
                drop.append(label)
    if not lines:
        return ""
    return (
        f"model {model!r}: checkpoints share weights, so a sweep would count them as distinct "
        "training states:\n  " + "\n  ".join(lines) + "\n"
        f"Either drop {_join(sorted(set(drop), key=labels.index))} from "
        f"models.{model}.{labels_key} in the config, or keep them knowingly with "
        "'integrity.duplicates: keep' (they are then drawn hollow in the step figures)."
    )
