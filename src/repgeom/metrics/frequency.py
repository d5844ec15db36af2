"""Frequency-stratified geometry: how a layer's geometry varies with its tokens' train frequency.

Buckets come from the corpus's own token counts on its train split (:func:`token_counts` from
the train token ids): ``n_buckets`` log-spaced intervals between the smallest and the largest
positive count of the vocabulary (:func:`log_edges`), bucket b (1…B) holding the counts in
[edge_{b−1}, edge_b), the last one closed. Tokens never seen in train (count 0, or an id beyond
the counts) have no logarithm of frequency: with ``unseen="bucket"`` they form bucket 0 (the
default), with ``unseen="exclude"`` they are left out of the buckets. They are always left out
of the frequency drift.

Per bucket (:func:`frequency_accumulator`):

- ``mean_cosine``: the mean cosine over ordered pairs of distinct tokens of the bucket, exact over
  all its tokens (:func:`repgeom.metrics.family.mean_cosine_from_sum`); zero vectors have no
  direction and are skipped and counted (``n_zero_norm``);
- ``anisotropy`` and ``rankme``: the definitions of the geometry job
  (:func:`repgeom.metrics.anisotropy.anisotropy_from_eigvals`,
  :func:`repgeom.metrics.family.rankme`) on the centred spectrum of a seeded subsample of
  ``tokens_per_bucket`` tokens of the bucket (all of them if it holds fewer). Both depend on the
  sample size (RankMe is at most n − 1), so the same size in every bucket keeps them comparable,
  and it bounds the cost: B·m·d·min(m, d) flops instead of N·d². NaN for a bucket of fewer than
  2 tokens or of zero variance.

Frequency drift: over every token (row) seen in train, the Pearson and Spearman (average ranks
for ties) correlations between log(train count) and the token's projection x·u on

- ``mean``: u = the mean of all the tokens used, normalised (exact, from the same pass);
- ``principal``: u = the first principal direction (top eigenvector of the centred scatter),
  sign-fixed so that its largest-magnitude component is positive. It is estimated on a seeded
  subsample of ``direction_sample`` tokens (None: all tokens, exact, at the cost of a d × d
  scatter over all of them — the geometry job's whole cost); a caller that has the exact
  directions (the geometry job's scatter) passes them as ``directions``.

Reads: one gathered read of the subsamples (:func:`frequency_accumulator`), then two streaming
passes (pass 1: bucket sums and the mean; pass 2: the projections), which
:func:`repgeom.metrics.dimensions.layer_dimensions` can share (its ``also`` argument).

Correlations are over token occurrences, so frequent types weigh in proportion to their count;
the sign of a correlation with the principal direction is that of the sign convention above.

Options (:class:`FrequencyOptions`, the config's ``metrics.frequency``; defaults in the
schema): at 16384 tokens × 1024 dimensions, 8 buckets of 256 tokens and the principal direction
from 1024 tokens cost about a third of the geometry job's anisotropy pass
(``tokens_per_bucket=1024, direction_sample=None`` cost ~2.7 times that pass, unless the exact
direction comes from moments another accumulator fills on the same reads: the ``moments`` of
:func:`frequency_accumulator`, as the geometry job passes its anisotropy scatter).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse.linalg
from scipy.linalg.blas import dsyrk
from scipy.stats import rankdata

from repgeom.activations.source import LayerSource
from repgeom.data.tokens import read_tokens, tokens_attrs
from repgeom.metrics.anisotropy import anisotropy_from_eigvals
from repgeom.metrics.dimensions import Rows
from repgeom.metrics.family import mean_cosine_from_sum, rankme
from repgeom.metrics.moments import Moments
from repgeom.sampling import seeded_subsample

UNSEEN = ("bucket", "exclude")
DIRECTIONS = ("mean", "principal")
_DENSE_EIGH = 256  # below this many dimensions the principal direction comes from a full eigh

ATTRS: dict[str, tuple[str, str]] = {
    "count_low": ("smallest train count of the bucket (inclusive)", "tokens"),
    "count_high": ("largest train count of the bucket (exclusive but for the last)", "tokens"),
    "n_tokens": ("tokens in the bucket", "tokens"),
    "n_zero_norm": ("tokens of zero norm, left out of the mean cosine", "tokens"),
    "mean_cosine": ("mean cosine over ordered pairs of distinct tokens of the bucket", "1"),
    "n_spectrum_tokens": ("tokens of the subsample the bucket's spectrum comes from", "tokens"),
    "anisotropy": ("anisotropy σ₁²/‖X_c‖_F² of the bucket's subsample", "1"),
    "rankme": ("RankMe exp(H(σ/Σσ)) of the bucket's subsample", "1"),
    "drift_pearson": (
        "Pearson correlation of log train count and projection on the direction",
        "1",
    ),
    "drift_spearman": (
        "Spearman correlation of log train count and projection on the direction",
        "1",
    ),
    "n_drift_tokens": ("tokens seen in train, used by the frequency drift", "tokens"),
    "n_direction_tokens": ("tokens the principal direction was estimated on (0: given)", "tokens"),
}


@dataclass(frozen=True)
class FrequencyOptions:
    """Parameters of :func:`frequency_accumulator` (module doc): the config's ``metrics.frequency``
    section (:func:`repgeom.options.build`; every default lives in the schema)."""

    n_buckets: int
    tokens_per_bucket: int
    unseen: str
    direction_sample: int | None
    seed: int

    def __post_init__(self) -> None:
        if self.unseen not in UNSEEN:
            raise ValueError(f"unseen must be one of {UNSEEN}, got {self.unseen!r}")
        if self.n_buckets < 1 or self.tokens_per_bucket < 2:
            raise ValueError("n_buckets must be ≥ 1 and tokens_per_bucket ≥ 2")
        if self.direction_sample is not None and self.direction_sample < 2:
            raise ValueError("direction_sample must be ≥ 2 (or None for all tokens)")

    def attrs(self) -> dict[str, Any]:
        """The options as dataset attrs (``direction_sample`` None as "all")."""
        out = dataclasses.asdict(self)
        if out["direction_sample"] is None:
            out["direction_sample"] = "all"
        return out


def split_counts(tokens_path: str | Path, split: str = "train") -> np.ndarray:
    """Count of every token id in one split of a token store (:mod:`repgeom.data.tokens`),
    padding left out, of length at least the store's ``vocab_size`` attr where it has one. The
    special tokens the windows hold (a prepended BOS, the EOS between documents) count as any
    other token."""
    windows = read_tokens(tokens_path, split)
    valid = np.arange(windows.ids.shape[1]) < windows.lengths[:, None]
    vocab = tokens_attrs(tokens_path).get("vocab_size")
    return token_counts(windows.ids[valid], None if vocab is None else int(vocab))


def token_counts(train_token_ids: np.ndarray, vocab_size: int | None = None) -> np.ndarray:
    """Count of every token id in the train split's token ids (length ≥ ``vocab_size``)."""
    ids = np.asarray(train_token_ids).ravel()
    if ids.size and (not np.issubdtype(ids.dtype, np.integer) or ids.min() < 0):
        raise ValueError("train token ids must be non-negative integers")
    return np.bincount(ids, minlength=vocab_size or 0).astype(np.int64)


def log_edges(counts: np.ndarray, n_buckets: int) -> np.ndarray:
    """``n_buckets`` + 1 log-spaced edges from the smallest to the largest positive count."""
    c = np.asarray(counts)
    positive = c[c > 0]
    if not positive.size:
        raise ValueError("no token has a positive train count")
    return np.geomspace(positive.min(), positive.max(), n_buckets + 1)


def count_of(token_id: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Train count of each token id (0 for ids beyond the counts)."""
    ids = np.asarray(token_id, dtype=np.int64)
    if ids.size and ids.min() < 0:
        raise ValueError("token ids must be non-negative")
    padded = np.concatenate([np.asarray(counts, dtype=np.int64), [0]])
    return padded[np.minimum(ids, len(padded) - 1)]


def assign_buckets(count: np.ndarray, edges: np.ndarray, unseen: str = "bucket") -> np.ndarray:
    """Bucket of each train count: 1…B by the edges, unseen (0) as bucket 0 or −1 (excluded)."""
    if unseen not in UNSEEN:
        raise ValueError(f"unseen must be one of {UNSEEN}, got {unseen!r}")
    c = np.asarray(count)
    b = np.clip(np.searchsorted(edges, c, side="right"), 1, len(edges) - 1)
    return np.where(c > 0, b, 0 if unseen == "bucket" else -1)


def centred_eigvals(x: np.ndarray) -> np.ndarray:
    """Eigenvalues (descending, ≥ 0) of the centred scatter of the rows of x, in float64: from
    the n × n Gram of the centred rows when n ≤ d (the same non-zero eigenvalues; the n-th, zero
    by centring, is set to 0 rather than left as rounding noise that RankMe would count), else
    from :class:`~repgeom.metrics.moments.Moments`."""
    x = np.asarray(x)
    n, d = x.shape
    if n > d:
        return Moments.of([x], d).eigvalsh()
    y = np.asarray(x, dtype=np.float64)
    y = y - y.mean(axis=0)
    gram = dsyrk(1.0, y, trans=0, lower=0)
    w = np.clip(scipy.linalg.eigvalsh(gram, lower=False)[::-1], 0.0, None)
    w[-1] = 0.0  # centred rows span at most n − 1 dimensions: the last is rounding noise
    return w


def _spectrum_metrics(x: np.ndarray, convention: str = "garrido") -> tuple[float, float]:
    """(anisotropy, RankMe by ``convention``) of the rows of x; NaN for fewer than 2 rows or
    zero variance."""
    if len(x) < 2:
        return np.nan, np.nan
    w = centred_eigvals(x)
    if not w.sum() > 0:
        return np.nan, np.nan
    return anisotropy_from_eigvals(w), rankme(w, convention)


def fix_sign(v: np.ndarray) -> np.ndarray:
    """v with its largest-magnitude component (the first of ties) made positive."""
    return v if v[np.argmax(np.abs(v))] >= 0 else -v


def _top_eigenvector(op: Any, d: int, seed: int) -> np.ndarray:
    """Top eigenvector of a symmetric positive semi-definite operator on R^d (a dense matrix
    or a LinearOperator) by Lanczos (ARPACK, seeded start vector)."""
    v0 = np.random.default_rng(seed).normal(size=d)
    return scipy.sparse.linalg.eigsh(op, k=1, which="LA", v0=v0)[1][:, 0]


def principal_direction(scatter: np.ndarray, seed: int = 0) -> np.ndarray:
    """Unit top eigenvector of a symmetric (d, d) scatter matrix, sign-fixed (:func:`fix_sign`);
    Lanczos above 256 dimensions, else a full eigendecomposition."""
    s = np.asarray(scatter, dtype=np.float64)
    d = s.shape[0]
    v = np.linalg.eigh(s)[1][:, -1] if d <= _DENSE_EIGH else _top_eigenvector(s, d, seed)
    return fix_sign(v / np.linalg.norm(v))


def principal_direction_of(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """First principal direction of the rows of x, sign-fixed: the top eigenvector of YᵀY, Y the
    centred rows (float64), by Lanczos on v ↦ Yᵀ(Yv) (4·n·d flops a step, never forming the
    d × d scatter), or a full eigendecomposition of YᵀY up to 256 dimensions."""
    y = np.asarray(x, dtype=np.float64)
    y = y - y.mean(axis=0)
    d = y.shape[1]
    if d <= _DENSE_EIGH:
        return principal_direction(y.T @ y, seed)
    op = scipy.sparse.linalg.LinearOperator(
        (d, d), matvec=lambda v: y.T @ (y @ v), dtype=np.float64
    )
    v = _top_eigenvector(op, d, seed)
    return fix_sign(v / np.linalg.norm(v))


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    denominator = np.sqrt((a @ a) * (b @ b))
    return float(a @ b / denominator) if denominator > 0 else np.nan


def drift_correlations(log_count: np.ndarray, projection: np.ndarray) -> tuple[float, float]:
    """(Pearson, Spearman) correlation of two float vectors; NaN if either is constant or they
    hold fewer than 2 values. Spearman is the Pearson correlation of average ranks."""
    a = np.asarray(log_count, dtype=np.float64)
    b = np.asarray(projection, dtype=np.float64)
    if len(a) != len(b):
        raise ValueError(f"{len(a)} log counts for {len(b)} projections")
    if len(a) < 2:
        return np.nan, np.nan
    return _pearson(a, b), _pearson(rankdata(a), rankdata(b))


@dataclass(frozen=True)
class FrequencyResult:
    """Frequency-stratified geometry of one layer (module doc)."""

    bucket: np.ndarray  # (bucket,) 0 = unseen in train, 1…B = frequency buckets
    count_low: np.ndarray
    count_high: np.ndarray
    n_tokens: np.ndarray
    n_zero_norm: np.ndarray
    mean_cosine: np.ndarray
    n_spectrum_tokens: np.ndarray
    anisotropy: np.ndarray
    rankme: np.ndarray
    drift_pearson: np.ndarray  # (direction,) mean, principal
    drift_spearman: np.ndarray
    n_drift_tokens: int
    n_direction_tokens: int

    def coords(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "direction": list(DIRECTIONS)}

    def variables(self) -> dict[str, tuple]:
        def dims(k: str) -> tuple[str, ...]:
            if k.startswith("drift_"):
                return ("direction",)
            return () if k in ("n_drift_tokens", "n_direction_tokens") else ("bucket",)

        return {
            k: (
                dims(k),
                np.asarray(getattr(self, k)),
                dict(zip(("long_name", "units"), ATTRS[k], strict=True)),
            )
            for k in self.__dataclass_fields__
            if k != "bucket"
        }


def _samples(label: np.ndarray, columns: int, o: FrequencyOptions) -> list[np.ndarray]:
    """Per bucket, the seeded subsample (indices into the rows used) of its spectrum."""
    return [
        seeded_subsample(np.flatnonzero(label == b), o.tokens_per_bucket, o.seed, repeat=b)
        for b in range(columns)
    ]


def _mean_direction(total: np.ndarray) -> np.ndarray:
    """The normalised sum of the rows (zero if the sum is)."""
    norm = np.linalg.norm(total)
    return total / norm if norm > 0 else total


class FrequencyAccumulator:
    """Two passes over a layer's row blocks (the :class:`repgeom.metrics.dimensions.TwoPass`
    protocol, so it shares the reads of :func:`repgeom.metrics.dimensions.run_two_passes`):
    pass 1 sums the unit vectors of each bucket and all the rows (and, for an exact principal
    direction, their moments); pass 2 projects the rows seen in train on the two directions.
    Build it with :func:`frequency_accumulator`, which reads the subsamples first."""

    def __init__(
        self,
        label: np.ndarray,
        count: np.ndarray,
        dim: int,
        n_columns: int,
        principal: np.ndarray | None,
        shared: Moments | None = None,
    ) -> None:
        self.label, self.count, self.n_columns = label, count, n_columns
        self.sums = np.zeros((n_columns + 1, dim))  # last row: Σx
        self.zero = np.zeros(n_columns, dtype=np.int64)
        self.principal = principal
        self.shared = shared if principal is None else None
        self.moments = Moments(dim) if principal is None and shared is None else None
        self.mean: np.ndarray | None = None
        self.projections: list[np.ndarray] = []
        self.seen = 0
        self.spectra: list[tuple[float, float]] = []
        self.samples: list[np.ndarray] = []
        self.edges = np.zeros(0)
        self.n_direction = 0
        self.unseen = "bucket"
        self.seed = 0

    def _labels(self, rows: Rows) -> np.ndarray:
        """The bucket labels of the next rows of this pass."""
        lab = self.label[self.seen : self.seen + len(rows.x)]
        self.seen += len(rows.x)
        return lab

    def first(self, rows: Rows) -> None:
        lab = self._labels(rows)
        x64, sq = rows.x64, rows.sq
        w = np.zeros((len(x64), self.n_columns + 1))
        ok = (lab >= 0) & (sq > 0)
        w[np.flatnonzero(ok), lab[ok]] = 1.0 / np.sqrt(sq[ok])
        w[:, -1] = 1.0
        self.sums += w.T @ x64
        self.zero += np.bincount(lab[(lab >= 0) & (sq == 0)], minlength=self.n_columns)
        if self.moments is not None:
            self.moments.update(x64)

    def end_first(self) -> None:
        if self.seen != len(self.label):
            raise ValueError(f"pass 1 saw {self.seen} rows for {len(self.label)} token labels")
        moments = self.moments if self.moments is not None else self.shared
        if moments is not None:
            if moments.n != self.seen:
                raise ValueError(f"the moments hold {moments.n} rows, pass 1 saw {self.seen}")
            self.n_direction = moments.n
            self.principal = principal_direction(moments.scatter(), self.seed)
        if self.mean is None:
            self.mean = _mean_direction(self.sums[-1])
        self._directions = np.column_stack([self.mean, self.principal])
        self.seen = 0

    def second(self, rows: Rows) -> None:
        start = self.seen
        self._labels(rows)
        keep = self.count[start : self.seen] > 0
        self.projections.append(rows.x64[keep] @ self._directions)

    def result(self) -> FrequencyResult:
        if self.seen != len(self.label):
            raise ValueError(f"pass 2 saw {self.seen} rows for {len(self.label)} token labels")
        columns = self.n_columns
        n_tokens = np.bincount(self.label[self.label >= 0], minlength=columns)
        n_unit = n_tokens - self.zero
        cos = [
            mean_cosine_from_sum(self.sums[b], int(n_unit[b])) if n_unit[b] >= 2 else np.nan
            for b in range(columns)
        ]
        proj = np.concatenate(self.projections) if self.projections else np.zeros((0, 2))
        log_count = np.log(self.count[self.count > 0])
        drift = [drift_correlations(log_count, proj[:, j]) for j in range(2)]
        pick = slice(0 if self.unseen == "bucket" else 1, columns)
        return FrequencyResult(
            bucket=np.arange(columns)[pick],
            count_low=np.concatenate([[0.0], self.edges[:-1]])[pick],
            count_high=np.concatenate([[0.0], self.edges[1:]])[pick],
            n_tokens=n_tokens[pick],
            n_zero_norm=self.zero[pick],
            mean_cosine=np.array(cos)[pick],
            n_spectrum_tokens=np.array([len(s) for s in self.samples])[pick],
            anisotropy=np.array([s[0] for s in self.spectra])[pick],
            rankme=np.array([s[1] for s in self.spectra])[pick],
            drift_pearson=np.array([d[0] for d in drift]),
            drift_spearman=np.array([d[1] for d in drift]),
            n_drift_tokens=len(log_count),
            n_direction_tokens=self.n_direction,
        )


def frequency_accumulator(
    source: LayerSource,
    layer: int,
    counts: np.ndarray,
    options: FrequencyOptions,
    rows: np.ndarray | None = None,
    directions: tuple[np.ndarray, np.ndarray] | None = None,
    moments: Moments | None = None,
    rankme: str = "garrido",
) -> FrequencyAccumulator:
    """The frequency analysis of one layer of ``source`` (the sorted ``rows`` if given), ready
    for its two passes over ``source.iter_blocks(layer, rows)``: the buckets' subsamples and the
    principal direction's are read here, in one read, and their spectra computed.

    ``moments``: the moments another accumulator of the same passes fills with the same rows
    in pass 1, before this one's ``end_first`` (the geometry job's anisotropy scatter). With
    ``direction_sample`` None and no ``directions``, the exact principal direction comes from
    them, and no second scatter is accumulated here. ``rankme``: the buckets' RankMe convention
    (:func:`repgeom.metrics.family.rankme`)."""
    o = options
    d = source.hidden_size
    index = np.arange(source.n_tokens) if rows is None else np.asarray(rows)
    count = count_of(np.asarray(source.token_id)[index], counts)
    edges = log_edges(counts, o.n_buckets)
    label = assign_buckets(count, edges, o.unseen)
    columns = o.n_buckets + 1
    samples = _samples(label, columns, o)
    sampled = directions is None and o.direction_sample is not None
    direction_rows = (
        seeded_subsample(len(index), o.direction_sample, o.seed, columns)
        if sampled
        else np.zeros(0, dtype=np.int64)
    )
    union = np.unique(np.concatenate([*samples, direction_rows]).astype(np.int64))
    x = source.read(layer, index[union]) if len(union) else np.zeros((0, d), dtype=np.float32)
    principal = None
    if directions is not None:
        principal = np.asarray(directions[1], dtype=np.float64)
    elif sampled:
        principal = principal_direction_of(x[np.searchsorted(union, direction_rows)], o.seed)
    shared = moments if directions is None and o.direction_sample is None else None
    acc = FrequencyAccumulator(label, count, d, columns, principal, shared)
    acc.spectra = [_spectrum_metrics(x[np.searchsorted(union, s)], rankme) for s in samples]
    acc.samples, acc.edges, acc.unseen, acc.seed = samples, edges, o.unseen, o.seed
    acc.n_direction = len(direction_rows)
    if directions is not None:
        acc.mean = np.asarray(directions[0], dtype=np.float64)
    return acc
