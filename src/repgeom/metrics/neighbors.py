"""Exact k-nearest neighbours: float32 blocked search, float64 distances for the kept ones; the
distinct points of a sample and their distances at chosen neighbour ranks.

torch is imported by the functions that search, not with the module: the estimator registry
(:mod:`repgeom.metrics.estimators`), which the workflow reads when it plans, imports this one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

BACKENDS = ("auto", "torch", "faiss")
# Above this k the self-search compares each row block with all rows (twice the matmul): merging
# every block's candidates into all later rows' k best costs more than the halved matmul saves
# (20000 × 768 on 2 busy cores: 4–11 s against 10–26 s at k = 264; about even at k = 32).
_SYMMETRIC_MAX_K = 32
_GATHER_ELEMENTS = 1 << 22  # float64 coordinates gathered at a time (32 MB, one buffer)
RANK_WINDOW = 4  # with ``ranks``: float32 positions either side of a rank re-ranked in float64


def _faiss_search(q: np.ndarray, r: np.ndarray, kk: int) -> np.ndarray:
    import faiss

    index = faiss.IndexFlatL2(r.shape[1])
    index.add(np.ascontiguousarray(r, dtype=np.float32))
    return index.search(np.ascontiguousarray(q, dtype=np.float32), kk)[1]


def _keep_best(
    best_d: torch.Tensor, best_i: torch.Tensor, cand_d: torch.Tensor, cand_i: torch.Tensor
) -> None:
    """Merge candidates (rows × c) into each row's running k smallest, in place."""
    import torch

    all_d, all_i = torch.cat([best_d, cand_d], dim=1), torch.cat([best_i, cand_i], dim=1)
    top = torch.topk(all_d, best_d.shape[1], dim=1, largest=False)
    best_d.copy_(top.values)
    best_i.copy_(torch.gather(all_i, 1, top.indices))


def _rows_search_torch(
    q: torch.Tensor, r: torch.Tensor, k: int, block: int, self_search: bool
) -> np.ndarray:
    """Each query row's k nearest rows of r (nearest first), one block of queries against all of
    r; in a self-search (q is r) a row is not its own neighbour."""
    import torch

    idx = np.empty((q.shape[0], k), dtype=np.int64)
    r_sq = (r * r).sum(dim=1)
    for start in range(0, q.shape[0], block):
        qb = q[start : start + block]
        d2 = torch.addmm(r_sq, qb, r.T, alpha=-2.0).add_((qb * qb).sum(dim=1, keepdim=True))
        if self_search:
            d2[:, start : start + len(qb)].fill_diagonal_(float("inf"))
        idx[start : start + block] = torch.topk(d2, k, dim=1, largest=False).indices.numpy()
    return idx


def _self_search_torch(x: torch.Tensor, k: int, block: int) -> np.ndarray:
    """Each row's k nearest other rows, computing each pair's distance once: a row block
    against all later rows gives candidates to both sides (half the matmul flops)."""
    import torch

    n = x.shape[0]
    sq = (x * x).sum(dim=1)
    best_d = torch.full((n, k), float("inf"))
    best_i = torch.full((n, k), -1, dtype=torch.int64)
    for a in range(0, n, block):
        e = min(a + block, n)
        d2 = torch.addmm(sq[a:], x[a:e], x[a:].T, alpha=-2.0).add_(sq[a:e, None])
        d2[:, : e - a].fill_diagonal_(float("inf"))  # not itself
        top = torch.topk(d2, min(k, n - a), dim=1, largest=False)  # the last block may be narrow
        _keep_best(best_d[a:e], best_i[a:e], top.values, top.indices + a)
        if e < n:  # the same distances seen from the later rows
            top = torch.topk(d2[:, e - a :], min(k, e - a), dim=0, largest=False)
            _keep_best(best_d[e:], best_i[e:], top.values.T, top.indices.T + a)
    return best_i.numpy()


def _exact_distances(q64: np.ndarray, r64: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Float64 distances from each query row to its rows ``idx`` of ref, a few queries at a time
    (at most 128 and 32 MB of gathered neighbours, in one reused buffer: no page faults)."""
    import torch

    q, r = (torch.from_numpy(np.require(a, requirements="CW")) for a in (q64, r64))
    i = torch.from_numpy(np.ascontiguousarray(idx))
    k, width = idx.shape[1], r.shape[1]
    rows = max(1, min(128, _GATHER_ELEMENTS // max(1, k * width)))
    dist = torch.empty(idx.shape, dtype=torch.float64)
    buffer = torch.empty((rows * k, width), dtype=torch.float64)
    for s in range(0, len(idx), rows):
        b = min(rows, len(idx) - s)
        diff = torch.index_select(r, 0, i[s : s + b].flatten(), out=buffer[: b * k])
        diff = diff.view(b, k, width)
        diff -= q[s : s + b, None]
        torch.linalg.vector_norm(diff, dim=2, out=dist[s : s + b])
    return dist.numpy()


def _at_ranks(
    q64: np.ndarray, r64: np.ndarray, idx: np.ndarray, ranks: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Float64 distances and indices at 1-based ``ranks`` from candidates sorted by float32
    distance: rank n is the (n − lo)-th nearest in float64 of float32 positions lo … n − 1 + W
    (lo = max(0, n − 1 − W)), the same as re-ranking all of them when float32 rounding moves
    no neighbour by more than W = RANK_WINDOW positions."""
    lows = np.maximum(ranks - 1 - RANK_WINDOW, 0)
    highs = np.minimum(ranks + RANK_WINDOW, idx.shape[1])  # every candidate: no later one missed
    windows = [np.arange(lo, hi) for lo, hi in zip(lows, highs, strict=True)]
    positions = np.unique(np.concatenate(windows))
    cand = idx[:, positions]
    exact = _exact_distances(q64, r64, cand)
    rows = np.arange(len(idx))
    dist = np.empty((len(idx), len(ranks)))
    found = np.empty((len(idx), len(ranks)), dtype=np.int64)
    for j, (lo, window) in enumerate(zip(lows, windows, strict=True)):
        cols = np.searchsorted(positions, window)
        order = np.argsort(exact[:, cols], axis=1, kind="stable")
        pick = cols[order[:, ranks[j] - 1 - lo]]
        dist[:, j], found[:, j] = exact[rows, pick], cand[rows, pick]
    return dist, found


def _checked_ranks(ranks: np.ndarray | None, k: int, n_ref: int) -> np.ndarray | None:
    """``ranks`` as int64, ValueError unless they lie in 1 … k − RANK_WINDOW (1 … k when k is
    every one of the ``n_ref`` reference points)."""
    if ranks is None:
        return None
    ranks = np.asarray(ranks, dtype=np.int64)
    top = k if k == n_ref else k - RANK_WINDOW  # with every point a candidate, all of k
    if ranks.ndim != 1 or len(ranks) == 0 or ranks.min() < 1 or ranks.max() > top:
        raise ValueError(f"ranks must lie in 1 … {top} (k={k}, {n_ref} reference points)")
    return ranks


def _candidates(
    q: torch.Tensor, r: torch.Tensor, k: int, block: int, backend: str, self_search: bool
) -> np.ndarray:
    """Indices (n, k) of each centred float32 query row's k nearest rows of r (nearest first by
    float32 distance), by the backend; in a self-search (q is r) not the row itself."""
    if backend == "faiss":
        kk = k + 1 if self_search else k  # faiss returns the point itself among its neighbours
        found = _faiss_search(q.numpy(), r.numpy(), kk)
        if self_search:
            own = found == np.arange(len(found))[:, None]
            # drop the point itself, or the last neighbour where a tie pushed it out
            own[~own.any(axis=1), -1] = True
            found = found[~own].reshape(len(found), k)
        return found.astype(np.int64)
    if self_search and k <= _SYMMETRIC_MAX_K:
        return _self_search_torch(q, k, block)
    return _rows_search_torch(q, r, k, block, self_search)


def knn(
    query: np.ndarray,
    ref: np.ndarray | None = None,
    k: int = 2,
    block: int = 512,
    backend: str = "auto",
    ranks: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Distances (float64, ascending) and indices of the k nearest rows of ``ref`` to each query.

    With ``ref=None`` the reference set is ``query`` itself and each point's own index is
    excluded (a duplicate of a point is still a neighbour, at distance 0). The search runs in
    float32 on centred data — a blocked torch matmul ('torch'; 'auto' uses it too: on 2 CPU
    cores it is 5–8× faster than faiss-cpu, see benchmarks/bench_twonn.py) or faiss
    ``IndexFlatL2`` ('faiss') — and the kept neighbours' distances are recomputed in float64.
    A torch self-search computes each pair once for k ≤ 32 and compares whole rows above that.

    With ``ranks`` (1-based, ≤ k − RANK_WINDOW, or ≤ k when k is every other point) only the
    neighbours at those ranks come back, (n, len(ranks)), and float64 distances are computed
    only for the candidates within RANK_WINDOW float32 positions of a rank (GRIDE at 8 scales
    needs 9 ranks: 56 of 260 candidates).
    """
    import torch

    if backend not in BACKENDS:
        raise ValueError(f"unknown neighbour backend {backend!r}; choose from {BACKENDS}")
    q64 = np.asarray(query, dtype=np.float64)
    self_search = ref is None
    r64 = q64 if self_search else np.asarray(ref, dtype=np.float64)
    if q64.ndim != 2 or r64.ndim != 2 or q64.shape[1] != r64.shape[1]:
        raise ValueError(f"query {q64.shape} and ref {r64.shape} must be (n, d) with the same d")
    n_ref = r64.shape[0] - (1 if self_search else 0)
    if k > n_ref:
        raise ValueError(f"k={k} neighbours asked for but only {n_ref} reference points")
    ranks = _checked_ranks(ranks, k, n_ref)
    centre = r64.mean(axis=0)

    def centred32(a: np.ndarray) -> torch.Tensor:  # one pass: float64 difference, float32 out
        out = np.empty(a.shape, dtype=np.float32)
        return torch.from_numpy(np.subtract(a, centre, out=out, casting="same_kind"))

    q = centred32(q64)
    r = q if self_search else centred32(r64)
    idx = _candidates(q, r, k, block, backend, self_search)
    if ranks is not None:
        return _at_ranks(q64, r64, idx, ranks)
    dist = _exact_distances(q64, r64, idx)
    order = np.argsort(dist, axis=1, kind="stable")
    return np.take_along_axis(dist, order, axis=1), np.take_along_axis(idx, order, axis=1)


# --- the distinct points of a sample and their neighbours ------------------------------------

_MARGIN = RANK_WINDOW  # extra float32 candidates, so float32 ties cannot change the exact k
_QUERY_BLOCK = 512


def remove_duplicates(x: np.ndarray) -> tuple[np.ndarray, int]:
    """Float64 copy of x keeping the first copy of each distinct row, and the number removed.

    Rows are hashed (a wrapping uint64 dot product of their bits); only rows whose hashes
    collide are compared exactly, so the result equals an exact row-wise ``np.unique``.
    """
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"expected a non-empty (n, d) matrix of row vectors, got shape {x.shape}")
    x64 = x.astype(np.float64)
    x64 += 0.0  # turns −0.0 into 0.0, so equal rows compare equal
    if not np.isfinite(x64).all():
        raise ValueError("the data hold NaN or infinite values; check the activations")
    weights = np.random.default_rng(0).integers(1, 2**63, size=x64.shape[1], dtype=np.uint64)
    keys = x64.view(np.uint64) @ (weights | np.uint64(1))
    order = np.argsort(keys, kind="stable")
    same = np.flatnonzero(keys[order][1:] == keys[order][:-1])
    if same.size == 0:
        return x64, 0
    candidates = np.unique(np.concatenate([order[same], order[same + 1]]))
    _, first = np.unique(x64[candidates], axis=0, return_index=True)
    drop = np.setdiff1d(candidates, candidates[first])
    return np.delete(x64, drop, axis=0), len(drop)


def neighbour_distances(
    x: np.ndarray, k: int, backend: str = "auto", ranks: np.ndarray | None = None
) -> np.ndarray:
    """Float64 distances (n, k), ascending, from each row of x to its k nearest other rows;
    with ``ranks`` (1-based, ≤ k) only those columns, (n, len(ranks)).

    The float32 search (:func:`knn`, torch or faiss) returns a margin of extra candidates,
    re-ranked by float64 distance, so float32 ties cannot change the k kept.
    """
    n = np.asarray(x).shape[0]
    if not 1 <= k <= n - 1:
        raise ValueError(f"k={k} neighbours asked for among {n} points; need 1 ≤ k ≤ n − 1")
    if ranks is not None and not 1 <= np.min(ranks) <= np.max(ranks) <= k:
        raise ValueError(f"neighbour ranks must lie in 1 … k={k}, got {ranks}")
    kk = min(k + _MARGIN, n - 1)
    dist, _ = knn(x, None, k=kk, block=_QUERY_BLOCK, backend=backend, ranks=ranks)
    return dist if ranks is not None else dist[:, :k]


@dataclass(frozen=True)
class Neighbours:
    """The distinct points of one sample: each one's float64 distances to its neighbours of the
    (1-based, ascending) ``ranks``, from one exact search."""

    ranks: tuple[int, ...]
    distances: np.ndarray  # (n_points, len(ranks))
    n_points: int  # distinct points
    n_duplicates: int  # exact duplicate rows removed before the search

    def at(self, *ranks: int) -> np.ndarray:
        """The distance columns of ``ranks``, (n_points, len(ranks)), in the order asked."""
        missing = sorted(set(ranks) - set(self.ranks))
        if missing:
            raise ValueError(f"neighbour rank(s) {missing} were not searched (ranks {self.ranks})")
        return self.distances[:, [self.ranks.index(r) for r in ranks]]

    def ratios(self, near: int, far: int) -> np.ndarray:
        """Each point's ratio r_far / r_near of its neighbour distances at two ranks."""
        return self.at(far)[:, 0] / self.at(near)[:, 0]


class TooFewPoints(ValueError):
    """Not more distinct points than the largest neighbour rank asked for."""

    def __init__(
        self, n_points: int, n_duplicates: int, needed: int, advice: str = "use more points"
    ) -> None:
        self.n_points, self.n_duplicates, self.needed = n_points, n_duplicates, needed
        super().__init__(
            f"{n_points} distinct point(s) ({n_duplicates} duplicates removed) but {needed} "
            f"neighbours are needed; {advice}"
        )


def neighbours(
    x: np.ndarray, ranks: Callable[[int], Iterable[int]], backend: str = "auto"
) -> Neighbours:
    """The rows of x without duplicates (:func:`remove_duplicates`), and one exact search of them
    (:func:`neighbour_distances`) up to the largest of ``ranks(n)``, the neighbour ranks needed
    for n distinct points (:class:`TooFewPoints` when n is not larger). No rank, no search."""
    xu, n_dup = remove_duplicates(x)
    n = xu.shape[0]
    wanted = tuple(sorted({int(r) for r in ranks(n)}))
    if wanted and wanted[-1] > n - 1:
        raise TooFewPoints(n, n_dup, wanted[-1])
    if not wanted:
        return Neighbours((), np.empty((n, 0)), n, n_dup)
    dist = neighbour_distances(xu, wanted[-1], backend=backend, ranks=np.asarray(wanted))
    return Neighbours(wanted, dist, n, n_dup)
