"""Where anisotropy comes from, dimension by dimension: rogue dimensions and massive activations.

**Rogue dimensions** (Timkey & van Schijndel 2021). With unit vectors n_t = x_t/‖x_t‖ of the N
tokens used, dimension i contributes

    C_i = ((Σ_t n_ti)² − Σ_t n_ti²) / (N(N−1))

to the mean cosine over ordered pairs of distinct tokens, so Σ_i C_i is that mean cosine (the
``mean_cosine`` of :mod:`repgeom.metrics.family`). For i.i.d. tokens C_i is an unbiased estimate
of (E n_i)²: a dimension whose normalised value has a non-zero mean is "rogue". The result names
the top-k dimensions by C_i, the mean cosine after deleting the top-k dimensions for each k of
``without_top`` (norms recomputed on the dimensions left), and the standardised mean cosine:
every dimension z-scored over the tokens (population σ; the scale of σ cancels in a cosine),
dimensions constant over the tokens dropped (their z-score is 0/0, counted), then the mean
cosine of the z-scored vectors.

**Massive activations** (Sun et al., COLM 2024): ``massive_ratio`` = max|x| / median|x| over every
entry of the layer's tokens, and the entries with |x| > ``absolute`` and |x| > ``relative`` ×
median|x| (both strict): their count per dimension, the top-n by magnitude with their token row,
position and token id, and the positions and token ids that hold most of them.

Streaming: both analyses take two passes over the same row blocks (a layer of a store can be
~100k × 4096), each O(N·d) time and O(d) memory, and :func:`layer_dimensions` runs both on the
same two reads. Pass 1 accumulates Σ n_t, Σ n_t² and shifted per-dimension moments (float64), and
a histogram of the high 16 bits of every |x| as float32; pass 2, with the ranking, the mean and
σ known, accumulates the unit sums without the top-k dimensions and of the z-scored vectors,
and the low 16 bits of the entries in the one or two histogram bins holding the median.

The median is **exact**: the bit patterns of non-negative float32 values sort like the values,
so the two-level radix count (high 16 bits, then low 16 bits of the median's bin) finds the
middle order statistics exactly in two passes and O(2¹⁶) memory; an even count averages the two
middles, as ``np.median`` does. The massive-activation statistics are those of the float32
values (what every :class:`~repgeom.activations.source.LayerSource` yields; a float64 block is
rounded to float32 for them). The massive threshold needs the median, known only after pass 2,
so pass 2 tallies the entries above the threshold computed from the upper bound of the median's
pass-1 bin (certain) and holds back only those between the thresholds of the bin's bounds (a
band 2⁻⁷ wide in relative terms), settled at the end.

Zero-norm rows have no direction: the rogue analysis skips them and counts them
(``n_zero_norm``), as it does rows left with zero norm once the top-k dimensions are deleted or
once z-scored; the massive analysis keeps them (their entries are zeros). NaN or infinite
values raise FloatingPointError.

Results are frozen dataclasses; ``variables()`` gives (dims, values, attrs) triples and
``coords()`` the coordinates, so ``xr.Dataset(r.variables(), coords=r.coords())`` is one layer's
dataset (concatenate over ``layer`` as the geometry job does).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Protocol

import numpy as np

from repgeom.activations.source import LayerSource
from repgeom.metrics.family import mean_cosine_from_sum
from repgeom.metrics.moments import SUB_BLOCK

Blocks = np.ndarray | Callable[[], Iterable[np.ndarray]]
"""A (n, d) array, or a callable returning a fresh iterable of (n_i, d) row blocks on every call
(each pass calls it once and must see the same rows in the same order)."""

_HI = 1 << 15  # non-negative float32 bit patterns have their top bit clear
_LO = 1 << 16
_LOW_MASK = np.uint32(0xFFFF)
_CANCEL = 1e-4  # share of ‖x‖² left after deleting dimensions below which it is summed afresh

ATTRS: dict[str, tuple[str, str]] = {
    "n_tokens": ("tokens with a non-zero vector, used by the rogue-dimension analysis", "tokens"),
    "n_zero_norm": ("tokens with a zero vector, skipped by the rogue-dimension analysis", "tokens"),
    "mean_cosine": ("mean cosine over ordered pairs of distinct tokens", "1"),
    "cosine_contribution": ("contribution C_i of each dimension to the mean cosine", "1"),
    "rogue_dimension": ("dimension with the rank-th largest contribution to the mean cosine", "1"),
    "rogue_contribution": ("contribution of that dimension to the mean cosine", "1"),
    "mean_cosine_without_rogue": ("mean cosine after deleting the top-k rogue dimensions", "1"),
    "n_zero_norm_without_rogue": (
        "tokens of zero norm once the top-k dimensions are deleted",
        "tokens",
    ),
    "standardised_mean_cosine": ("mean cosine of the per-dimension z-scored tokens", "1"),
    "n_constant_dimensions": ("dimensions constant over the tokens, dropped when z-scoring", "1"),
    "n_zero_norm_standardised": ("tokens equal to the mean on every dimension kept", "tokens"),
    "n_entries": ("entries (tokens × dimensions) of the massive-activation analysis", "1"),
    "max_abs": ("largest |activation|", "1"),
    "max_abs_dimension": ("dimension of the largest |activation|", "1"),
    "max_abs_row": ("token row of the largest |activation|", "1"),
    "median_abs": ("median |activation| over all entries (exact)", "1"),
    "massive_ratio": ("max |activation| / median |activation|", "1"),
    "massive_threshold": ("max(absolute, relative × median): entries above it are massive", "1"),
    "n_massive": ("massive activations", "1"),
    "massive_count": ("massive activations in each dimension", "1"),
    "massive_value": ("massive activation, by rank of magnitude (NaN-padded)", "1"),
    "massive_row": ("token row of the massive activation (−1-padded)", "1"),
    "massive_dimension": ("dimension of the massive activation (−1-padded)", "1"),
    "massive_position": ("position in its window of the massive activation's token", "1"),
    "massive_token_id": ("token id of the massive activation's token", "1"),
    "massive_top_position": ("positions holding the most massive activations", "1"),
    "massive_position_count": ("massive activations at that position", "1"),
    "massive_top_token_id": ("token ids holding the most massive activations", "1"),
    "massive_token_count": ("massive activations on tokens with that id", "1"),
}


def _var(dims: tuple[str, ...], value: Any, name: str) -> tuple:
    long_name, units = ATTRS[name]
    return (dims, np.asarray(value), {"long_name": long_name, "units": units})


class Rows:
    """A sub-block of rows as every accumulator reads it: its float64 copy, squared norms and
    float32 magnitudes are computed once, when first asked for, and shared."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = x

    @cached_property
    def x64(self) -> np.ndarray:
        return np.asarray(self.x, dtype=np.float64)

    @cached_property
    def sq(self) -> np.ndarray:
        """Squared norm of each row (float64); NaN or infinite values raise."""
        sq = np.einsum("ij,ij->i", self.x64, self.x64)
        if not np.isfinite(sq).all():
            raise FloatingPointError("block holds NaN, infinite or overflowing values")
        return sq

    @cached_property
    def abs32(self) -> np.ndarray:
        return np.abs(np.asarray(self.x, dtype=np.float32))


class TwoPass(Protocol):
    """An accumulator over two passes of the same row blocks."""

    def first(self, rows: Rows) -> None: ...
    def end_first(self) -> None: ...
    def second(self, rows: Rows) -> None: ...


def _factory(blocks: Blocks) -> Callable[[], Iterable[np.ndarray]]:
    if isinstance(blocks, np.ndarray):
        return lambda: [blocks]
    if callable(blocks):
        return blocks
    raise TypeError("blocks must be an (n, d) array or a callable returning an iterable of them")


def _sub_blocks(blocks: Iterable[np.ndarray]) -> Iterator[Rows]:
    """The rows of every block, SUB_BLOCK at a time (float64 for the rogue analysis, float32
    for the massive one, converted once each)."""
    for block in blocks:
        x = np.asarray(block)
        if x.ndim != 2:
            raise ValueError(f"expected (n, d) row blocks, got shape {x.shape}")
        for start in range(0, x.shape[0], SUB_BLOCK):
            yield Rows(x[start : start + SUB_BLOCK])


def run_two_passes(blocks: Blocks, accumulators: Sequence[TwoPass]) -> None:
    """Feed every accumulator the sub-blocks of pass 1, end it, then those of pass 2."""
    make = _factory(blocks)
    for x in _sub_blocks(make()):
        for acc in accumulators:
            acc.first(x)
    for acc in accumulators:
        acc.end_first()
    for x in _sub_blocks(make()):
        for acc in accumulators:
            acc.second(x)


# ---------------------------------------------------------------------------------------------
# rogue dimensions


@dataclass(frozen=True)
class RogueResult:
    """Rogue dimensions of one layer (module doc)."""

    n_tokens: int
    n_zero_norm: int
    mean_cosine: float
    cosine_contribution: np.ndarray  # (hidden,)
    rogue_dimension: np.ndarray  # (rogue_rank,)
    rogue_contribution: np.ndarray  # (rogue_rank,)
    without_top: np.ndarray  # (without_top,) the k of each entry below
    mean_cosine_without_rogue: np.ndarray  # (without_top,)
    n_zero_norm_without_rogue: np.ndarray  # (without_top,)
    standardised_mean_cosine: float
    n_constant_dimensions: int
    n_zero_norm_standardised: int

    def coords(self) -> dict[str, np.ndarray]:
        return {
            "hidden": np.arange(len(self.cosine_contribution)),
            "rogue_rank": np.arange(1, len(self.rogue_dimension) + 1),
            "without_top": self.without_top,
        }

    def variables(self) -> dict[str, tuple]:
        dims = {
            "cosine_contribution": ("hidden",),
            "rogue_dimension": ("rogue_rank",),
            "rogue_contribution": ("rogue_rank",),
            "mean_cosine_without_rogue": ("without_top",),
            "n_zero_norm_without_rogue": ("without_top",),
        }
        return {
            k: _var(dims.get(k, ()), getattr(self, k), k)
            for k in self.__dataclass_fields__
            if k != "without_top"
        }


def _check_ks(without_top: Sequence[int], top_k: int) -> np.ndarray:
    ks = np.asarray(sorted(set(int(k) for k in without_top)), dtype=np.int64)
    if top_k < 1 or (ks < 1).any():
        raise ValueError(f"top_k ({top_k}) and without_top {list(without_top)} must be ≥ 1")
    return ks


class RogueAccumulator:
    """Two-pass accumulator of the rogue-dimension analysis (module doc)."""

    def __init__(self, top_k: int = 10, without_top: Sequence[int] = (1, 3, 10)) -> None:
        self.top_k = top_k
        self.ks = _check_ks(without_top, top_k)
        self.dim = 0
        self.n = 0
        self.n_zero = 0
        self._unit_sum = self._unit_sq = self._sum = self._sq = np.zeros(0)
        self._shift: np.ndarray | None = None

    def _start(self, dim: int) -> None:
        if self.top_k > dim or self.ks[-1] >= dim:
            raise ValueError(
                f"top_k ({self.top_k}) must be at most, and every without_top k "
                f"{self.ks.tolist()} below, the number of dimensions ({dim})"
            )
        self.dim = dim
        self._unit_sum, self._unit_sq, self._sum, self._sq = (np.zeros(dim) for _ in range(4))

    def _rows(self, rows: Rows) -> tuple[np.ndarray, np.ndarray]:
        """Float64 non-zero rows of a sub-block and their squared norms."""
        x64 = rows.x64
        if x64.shape[1] != self.dim:
            raise ValueError(f"expected blocks of {self.dim} dimensions, got {x64.shape[1]}")
        sq = rows.sq
        keep = sq > 0
        if keep.all():
            return x64, sq
        return x64[keep], sq[keep]

    def first(self, rows: Rows) -> None:
        if not self.dim:
            self._start(rows.x.shape[1])
        x64, sq = self._rows(rows)
        self.n_zero += len(rows.x) - len(x64)
        if not len(x64):
            return
        inv = 1.0 / np.sqrt(sq)
        self._unit_sum += inv @ x64
        self._unit_sq += (inv * inv) @ (x64 * x64)
        if self._shift is None:  # the first row: a dimension constant over the tokens is 0
            self._shift = x64[0].copy()
        y = x64 - self._shift
        self._sum += y.sum(axis=0)
        self._sq += np.einsum("ij,ij->j", y, y)
        self.n += len(x64)

    def end_first(self) -> None:
        if self.n < 2:
            raise ValueError(f"{self.n} token(s) of non-zero norm; the mean cosine needs 2")
        n = self.n
        self.contribution = (self._unit_sum**2 - self._unit_sq) / (n * (n - 1))
        self.order = np.argsort(-self.contribution, kind="stable")
        # keep[:, c]: the dimensions left once the top ks[c] are deleted
        self._keep = np.ones((self.dim, len(self.ks)))
        for c, k in enumerate(self.ks):
            self._keep[self.order[:k], c] = 0.0
        m = self._sum / n
        var = np.clip(self._sq / n - m * m, 0.0, None)
        self.mean = self._shift + m
        self.constant = var <= 0
        self._inv_sd = np.zeros(self.dim)
        self._inv_sd[~self.constant] = 1.0 / np.sqrt(var[~self.constant])
        self._without_sum = np.zeros((len(self.ks), self.dim))
        self._without_n = np.zeros(len(self.ks), dtype=np.int64)
        self._z_sum = np.zeros(self.dim)
        self._z_n = 0
        self._seen = 0

    @staticmethod
    def _inverse_norms(sq: np.ndarray) -> np.ndarray:
        """1/√sq where sq > 0, else 0 (those rows are left out)."""
        out = np.zeros_like(sq)
        np.divide(1.0, np.sqrt(sq, out=np.zeros_like(sq), where=sq > 0), out=out, where=sq > 0)
        return out

    def _rest_norms(self, x64: np.ndarray, sq: np.ndarray) -> np.ndarray:
        """(rows, K) squared norms left once the top ks[c] dimensions are deleted: ‖x‖² minus
        their squares, recomputed by summing the dimensions kept where that subtraction
        cancels (≥ 4 of 16 digits lost, or nothing left), so every norm keeps ~12 digits."""
        top = np.cumsum(np.square(x64[:, self.order[: self.ks[-1]]]), axis=1)[:, self.ks - 1]
        rest = sq[:, None] - top
        unsure = rest <= _CANCEL * sq[:, None]
        rows = np.flatnonzero(unsure.any(axis=1))
        if len(rows):
            exact = np.square(x64[rows]) @ self._keep
            rest[rows] = np.where(unsure[rows], exact, rest[rows])
        return rest

    def second(self, rows: Rows) -> None:
        x64, sq = self._rows(rows)
        self._seen += len(x64)
        if not len(x64):
            return
        w = self._inverse_norms(self._rest_norms(x64, sq))
        self._without_sum += w.T @ x64
        self._without_n += (w > 0).sum(axis=0)
        z = np.subtract(x64, self.mean)
        z *= self._inv_sd
        wz = self._inverse_norms(np.einsum("ij,ij->i", z, z))
        self._z_sum += wz @ z
        self._z_n += int((wz > 0).sum())

    def result(self) -> RogueResult:
        if self._seen != self.n:
            raise ValueError(f"pass 2 saw {self._seen} non-zero rows, pass 1 saw {self.n}")
        without = np.full(len(self.ks), np.nan)
        for c in range(len(self.ks)):
            if self._without_n[c] >= 2:
                s = self._without_sum[c] * self._keep[:, c]
                without[c] = mean_cosine_from_sum(s, int(self._without_n[c]))
        z_cos = mean_cosine_from_sum(self._z_sum, self._z_n) if self._z_n >= 2 else np.nan
        top = self.order[: self.top_k]
        return RogueResult(
            n_tokens=self.n,
            n_zero_norm=self.n_zero,
            mean_cosine=mean_cosine_from_sum(self._unit_sum, self.n),
            cosine_contribution=self.contribution,
            rogue_dimension=top.astype(np.int64),
            rogue_contribution=self.contribution[top],
            without_top=self.ks,
            mean_cosine_without_rogue=without,
            n_zero_norm_without_rogue=self.n - self._without_n,
            standardised_mean_cosine=float(z_cos),
            n_constant_dimensions=int(self.constant.sum()),
            n_zero_norm_standardised=self.n - self._z_n,
        )


# ---------------------------------------------------------------------------------------------
# massive activations


@dataclass(frozen=True)
class MassiveResult:
    """Massive activations of one layer (module doc). Rows are 0-based in the order the blocks
    yield them (:func:`layer_dimensions` maps them to the store's token index)."""

    n_entries: int
    max_abs: float
    max_abs_dimension: int
    max_abs_row: int
    median_abs: float
    massive_ratio: float
    massive_threshold: float
    n_massive: int
    massive_count: np.ndarray  # (hidden,)
    massive_value: np.ndarray  # (massive_rank,)
    massive_row: np.ndarray
    massive_dimension: np.ndarray
    massive_position: np.ndarray
    massive_token_id: np.ndarray
    massive_top_position: np.ndarray  # (position_rank,)
    massive_position_count: np.ndarray
    massive_top_token_id: np.ndarray  # (token_rank,)
    massive_token_count: np.ndarray

    def coords(self) -> dict[str, np.ndarray]:
        n = len(self.massive_value)
        return {
            "hidden": np.arange(len(self.massive_count)),
            "massive_rank": np.arange(1, n + 1),
            "position_rank": np.arange(1, len(self.massive_top_position) + 1),
            "token_rank": np.arange(1, len(self.massive_top_token_id) + 1),
        }

    def variables(self) -> dict[str, tuple]:
        def dims(k: str) -> tuple[str, ...]:
            if k == "massive_count":
                return ("hidden",)
            if k in ("massive_top_position", "massive_position_count"):
                return ("position_rank",)
            if k in ("massive_top_token_id", "massive_token_count"):
                return ("token_rank",)
            if k.startswith("massive_") and k not in ("massive_ratio", "massive_threshold"):
                return ("massive_rank",)
            return ()

        return {k: _var(dims(k), getattr(self, k), k) for k in self.__dataclass_fields__}


def _labels(values: np.ndarray | None, name: str) -> np.ndarray | None:
    if values is None:
        return None
    v = np.asarray(values)
    if v.ndim != 1 or not np.issubdtype(v.dtype, np.integer) or (len(v) and v.min() < 0):
        raise ValueError(f"{name} must be a 1-D array of non-negative integers")
    return v.astype(np.int64)


def _top_counts(counts: np.ndarray, top_n: int) -> tuple[np.ndarray, np.ndarray]:
    """The labels with the most counts (ties: smaller label first), −1/0-padded to top_n."""
    label = np.full(top_n, -1, dtype=np.int64)
    count = np.zeros(top_n, dtype=np.int64)
    order = np.argsort(-counts, kind="stable")[:top_n]
    order = order[counts[order] > 0]
    label[: len(order)] = order
    count[: len(order)] = counts[order]
    return label, count


class _Tally:
    """Massive entries found: counts per dimension, position and token id, and the top-n."""

    def __init__(
        self, dim: int, top_n: int, token_id: np.ndarray | None, position: np.ndarray | None
    ) -> None:
        self.top_n = top_n
        self.token_id, self.position = token_id, position
        self.per_dim = np.zeros(dim, dtype=np.int64)
        self.per_position = np.zeros(
            0 if position is None else position.max(initial=-1) + 1, dtype=np.int64
        )
        self.per_token = np.zeros(
            0 if token_id is None else token_id.max(initial=-1) + 1, dtype=np.int64
        )
        self.rows = np.zeros(0, dtype=np.int64)
        self.dims = np.zeros(0, dtype=np.int64)
        self.values = np.zeros(0, dtype=np.float32)

    def add(self, rows: np.ndarray, dims: np.ndarray, values: np.ndarray) -> None:
        if not len(rows):
            return
        self.per_dim += np.bincount(dims, minlength=len(self.per_dim))
        for labels, counts in ((self.position, self.per_position), (self.token_id, self.per_token)):
            if labels is not None:
                counts += np.bincount(labels[rows], minlength=len(counts))
        r = np.concatenate([self.rows, rows])
        d = np.concatenate([self.dims, dims])
        v = np.concatenate([self.values, values])
        keep = np.lexsort((d, r, -np.abs(v.astype(np.float64))))[: self.top_n]
        self.rows, self.dims, self.values = r[keep], d[keep], v[keep]

    def top_entries(self) -> dict[str, np.ndarray]:
        n, k = self.top_n, len(self.rows)
        out = {
            "massive_value": np.full(n, np.nan),
            **{
                name: np.full(n, -1, dtype=np.int64)
                for name in (
                    "massive_row",
                    "massive_dimension",
                    "massive_position",
                    "massive_token_id",
                )
            },
        }
        out["massive_value"][:k] = self.values
        out["massive_row"][:k] = self.rows
        out["massive_dimension"][:k] = self.dims
        if self.position is not None:
            out["massive_position"][:k] = self.position[self.rows]
        if self.token_id is not None:
            out["massive_token_id"][:k] = self.token_id[self.rows]
        return out


def _bits_value(bits: int) -> float:
    return float(np.array([bits], dtype=np.uint32).view(np.float32)[0])


class MassiveAccumulator:
    """Two-pass accumulator of the massive-activation analysis (module doc).

    ``token_id`` and ``position`` (optional, non-negative integers) label the rows in the order
    the blocks yield them; without them the results hold −1 for them and no top lists.
    """

    def __init__(
        self,
        token_id: np.ndarray | None = None,
        position: np.ndarray | None = None,
        absolute: float = 100.0,
        relative: float = 1000.0,
        top_n: int = 10,
    ) -> None:
        if absolute < 0 or relative < 0 or top_n < 1:
            raise ValueError("absolute and relative must be ≥ 0 and top_n ≥ 1")
        self.token_id = _labels(token_id, "token_id")
        self.position = _labels(position, "position")
        self.absolute, self.relative, self.top_n = float(absolute), float(relative), top_n
        self._hist = np.zeros(_HI, dtype=np.int64)
        self.n_entries = 0
        self.rows = 0
        self.max_abs = -1.0
        self.max_at = (-1, -1)

    def first(self, rows: Rows) -> None:
        a = rows.abs32
        bits = a.view(np.uint32)
        if not self.rows:
            self.dim = a.shape[1]
        elif a.shape[1] != self.dim:
            raise ValueError(f"expected blocks of {self.dim} dimensions, got {a.shape[1]}")
        if a.size:
            i = int(np.argmax(a))
            top = float(a.flat[i])
            if not np.isfinite(top):  # argmax stops at the first NaN
                raise FloatingPointError("block holds NaN or infinite values")
            if top > self.max_abs:
                self.max_abs, self.max_at = top, (self.rows + i // a.shape[1], i % a.shape[1])
            self._hist += np.bincount((bits >> 16).ravel(), minlength=_HI)
        self.n_entries += a.size
        self.rows += a.shape[0]

    def _bin_of_rank(self, rank: int) -> tuple[int, int]:
        """(high-bits bin, rank inside it) of the 0-based order statistic ``rank``."""
        cum = np.cumsum(self._hist)
        b = int(np.searchsorted(cum, rank, side="right"))
        return b, rank - int(cum[b] - self._hist[b])

    def end_first(self) -> None:
        if not self.n_entries:
            raise ValueError("no entries were given")
        m = self.n_entries
        self._ranks = [self._bin_of_rank((m - 1) // 2), self._bin_of_rank(m // 2)]
        self._low = {b: np.zeros(_LO, dtype=np.int64) for b, _ in self._ranks}
        lo = _bits_value(self._ranks[0][0] << 16)
        hi = _bits_value((self._ranks[1][0] << 16) | 0xFFFF)
        self._sure = np.float64(max(self.absolute, self.relative * hi))
        self._maybe = np.float64(max(self.absolute, self.relative * lo))
        self._maybe32 = np.float32(min(self._maybe, np.finfo(np.float32).max))
        if self._maybe32 > self._maybe:  # round down: a > _maybe32 keeps every a > _maybe
            self._maybe32 = np.nextafter(self._maybe32, np.float32(0))
        self.tally = _Tally(self.dim, self.top_n, self.token_id, self.position)
        self._band: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._seen = 0

    def second(self, rows: Rows) -> None:
        a = rows.abs32
        bits = a.view(np.uint32)
        high = bits >> 16
        for b, low in self._low.items():
            low += np.bincount((bits[high == b] & _LOW_MASK), minlength=_LO)
        candidate = a > self._maybe32  # a superset, compared in float32 (fast)
        if candidate.any():
            self._sort_out(rows.x, a, candidate)
        self._seen += a.shape[0]

    def _sort_out(self, x: np.ndarray, a: np.ndarray, candidate: np.ndarray) -> None:
        """Tally the candidates surely above the threshold; hold back those in the band."""
        rows, dims = np.nonzero(candidate)
        magnitude = a[rows, dims].astype(np.float64)
        rows, dims, magnitude = (v[magnitude > self._maybe] for v in (rows, dims, magnitude))
        values = np.asarray(x, dtype=np.float32)[rows, dims]
        sure = magnitude > self._sure
        rows = rows + self._seen
        self.tally.add(rows[sure], dims[sure], values[sure])
        self._band.append((rows[~sure], dims[~sure], values[~sure]))

    def _order_statistic(self, b: int, rank: int) -> float:
        cum = np.cumsum(self._low[b])
        low = int(np.searchsorted(cum, rank, side="right"))
        return _bits_value((b << 16) | low)

    def result(self) -> MassiveResult:
        if self._seen != self.rows:
            raise ValueError(f"pass 2 saw {self._seen} rows, pass 1 saw {self.rows}")
        for labels, name in ((self.token_id, "token_id"), (self.position, "position")):
            if labels is not None and len(labels) != self.rows:
                raise ValueError(f"{name} has {len(labels)} entries for {self.rows} rows")
        median = 0.5 * sum(self._order_statistic(b, r) for b, r in self._ranks)
        threshold = max(self.absolute, self.relative * median)
        for rows, dims, values in self._band:
            final = np.abs(values.astype(np.float64)) > threshold
            self.tally.add(rows[final], dims[final], values[final])
        t = self.tally
        positions = _top_counts(t.per_position, self.top_n)
        tokens = _top_counts(t.per_token, self.top_n)
        ratio = self.max_abs / median if median > 0 else (np.inf if self.max_abs > 0 else np.nan)
        return MassiveResult(
            n_entries=self.n_entries,
            max_abs=self.max_abs,
            max_abs_dimension=int(self.max_at[1]),
            max_abs_row=int(self.max_at[0]),
            median_abs=median,
            massive_ratio=float(ratio),
            massive_threshold=float(threshold),
            n_massive=int(t.per_dim.sum()),
            massive_count=t.per_dim,
            **t.top_entries(),
            massive_top_position=positions[0],
            massive_position_count=positions[1],
            massive_top_token_id=tokens[0],
            massive_token_count=tokens[1],
        )


# ---------------------------------------------------------------------------------------------
# one layer of a store


@dataclass(frozen=True)
class DimensionOptions:
    """Parameters of :func:`layer_dimensions`: the config's ``metrics.dimensions`` section
    (:func:`repgeom.options.build`; every default lives in the schema)."""

    top_k: int
    without_top: tuple[int, ...]
    absolute: float
    relative: float
    top_n: int

    def __post_init__(self) -> None:
        _check_ks(self.without_top, self.top_k)
        if self.absolute < 0 or self.relative < 0 or self.top_n < 1:
            raise ValueError("absolute and relative must be ≥ 0 and top_n ≥ 1")

    def check_hidden_size(self, hidden_size: int, where: str = "metrics.dimensions") -> None:
        """Refuse a ``top_k`` above, or a ``without_top`` k not below, the hidden size, naming
        the config keys (``where``: the section)."""
        if self.top_k > hidden_size or max(self.without_top) >= hidden_size:
            raise ValueError(
                f"config keys '{where}.top_k' ({self.top_k}) must be at most, and every k of "
                f"'{where}.without_top' {list(self.without_top)} below, the hidden size "
                f"({hidden_size}) of the store; lower them"
            )

    def attrs(self) -> dict[str, Any]:
        """The options as dataset attrs (sequences as lists)."""
        return {
            "top_k": self.top_k,
            "without_top": list(self.without_top),
            "absolute": self.absolute,
            "relative": self.relative,
            "top_n": self.top_n,
        }


@dataclass(frozen=True)
class LayerDimensions:
    """Both analyses of one layer; ``massive.massive_row`` and ``max_abs_row`` are token indices
    of the store."""

    rogue: RogueResult
    massive: MassiveResult

    def coords(self) -> dict[str, np.ndarray]:
        return {**self.rogue.coords(), **self.massive.coords()}

    def variables(self) -> dict[str, tuple]:
        return {**self.rogue.variables(), **self.massive.variables()}


def layer_dimensions(
    source: LayerSource,
    layer: int,
    rows: np.ndarray | None,
    options: DimensionOptions,
    also: Sequence[TwoPass] = (),
) -> LayerDimensions:
    """Rogue dimensions and massive activations of one layer of ``source`` (only the sorted
    ``rows`` if not None), from the same two streaming reads of the layer; the accumulators of
    ``also`` (e.g. :func:`repgeom.metrics.frequency.frequency_accumulator`, over the same
    ``rows``) are fed the same reads, and the caller takes their results."""
    o = options
    index = np.arange(source.n_tokens) if rows is None else np.asarray(rows)
    rogue = RogueAccumulator(o.top_k, o.without_top)
    massive = MassiveAccumulator(
        np.asarray(source.token_id)[index],
        np.asarray(source.position)[index],
        o.absolute,
        o.relative,
        o.top_n,
    )
    run_two_passes(lambda: source.iter_blocks(layer, rows), [rogue, massive, *also])
    m = massive.result()
    found = m.massive_row >= 0
    mapped = np.where(found, index[np.where(found, m.massive_row, 0)], -1)
    m = replace(m, massive_row=mapped, max_abs_row=int(index[m.max_abs_row]))
    return LayerDimensions(rogue.result(), m)
