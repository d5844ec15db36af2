"""Exact k-nearest neighbours: float32 blocked search, float64 distances for the kept ones."""

from __future__ import annotations

import numpy as np
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
    all_d, all_i = torch.cat([best_d, cand_d], dim=1), torch.cat([best_i, cand_i], dim=1)
    top = torch.topk(all_d, best_d.shape[1], dim=1, largest=False)
    best_d.copy_(top.values)
    best_i.copy_(torch.gather(all_i, 1, top.indices))


def _rows_search_torch(
    q: torch.Tensor, r: torch.Tensor, k: int, block: int, self_search: bool
) -> np.ndarray:
    """Each query row's k nearest rows of r (nearest first), one block of queries against all of
    r; in a self-search (q is r) a row is not its own neighbour."""
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
    if ranks is not None:
        ranks = np.asarray(ranks, dtype=np.int64)
        top = k if k == n_ref else k - RANK_WINDOW  # with every point a candidate, all of k
        if ranks.ndim != 1 or len(ranks) == 0 or ranks.min() < 1 or ranks.max() > top:
            raise ValueError(f"ranks must lie in 1 … {top} (k={k}, {n_ref} reference points)")
    centre = r64.mean(axis=0)

    def centred32(a: np.ndarray) -> torch.Tensor:  # one pass: float64 difference, float32 out
        out = np.empty(a.shape, dtype=np.float32)
        return torch.from_numpy(np.subtract(a, centre, out=out, casting="same_kind"))

    q = centred32(q64)
    r = q if self_search else centred32(r64)
    if backend == "faiss":
        kk = k + 1 if self_search else k  # faiss returns the point itself among its neighbours
        found = _faiss_search(q.numpy(), r.numpy(), kk)
        if self_search:
            own = found == np.arange(len(found))[:, None]
            # drop the point itself, or the last neighbour where a tie pushed it out
            own[~own.any(axis=1), -1] = True
            found = found[~own].reshape(len(found), k)
        idx = found.astype(np.int64)
    elif self_search and k <= _SYMMETRIC_MAX_K:
        idx = _self_search_torch(q, k, block)
    else:
        idx = _rows_search_torch(q, r, k, block, self_search)
    if ranks is not None:
        return _at_ranks(q64, r64, idx, ranks)
    dist = _exact_distances(q64, r64, idx)
    order = np.argsort(dist, axis=1, kind="stable")
    return np.take_along_axis(dist, order, axis=1), np.take_along_axis(idx, order, axis=1)
