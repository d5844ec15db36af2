"""Exact k-nearest neighbours: float32 blocked search, float64 distances for the kept ones."""

from __future__ import annotations

import numpy as np
import torch

BACKENDS = ("auto", "torch", "faiss")


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
    """Float64 distances from each query row to its rows ``idx`` of ref, 128 queries at a time
    (the gathered neighbours stay in cache)."""
    q, r = (torch.from_numpy(np.require(a, requirements="CW")) for a in (q64, r64))
    i = torch.from_numpy(idx)
    dist = torch.empty(idx.shape, dtype=torch.float64)
    for s in range(0, len(idx), 128):
        diff = r.index_select(0, i[s : s + 128].flatten()).view(-1, idx.shape[1], r.shape[1])
        diff -= q[s : s + 128, None]
        torch.linalg.vector_norm(diff, dim=2, out=dist[s : s + 128])
    return dist.numpy()


def knn(
    query: np.ndarray,
    ref: np.ndarray | None = None,
    k: int = 2,
    block: int = 512,
    backend: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Distances (float64, ascending) and indices of the k nearest rows of ``ref`` to each query.

    With ``ref=None`` the reference set is ``query`` itself and each point's own index is
    excluded (a duplicate of a point is still a neighbour, at distance 0). The search runs in
    float32 on centred data — a blocked torch matmul ('torch'; 'auto' uses it too: on 2 CPU
    cores it is 5–8× faster than faiss-cpu, see benchmarks/bench_twonn.py) or faiss
    ``IndexFlatL2`` ('faiss') — and the kept neighbours' distances are recomputed in float64.
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
    elif self_search:
        idx = _self_search_torch(q, k, block)
    else:
        idx = np.empty((q.shape[0], k), dtype=np.int64)
        r_sq = (r * r).sum(dim=1)
        for start in range(0, q.shape[0], block):
            qb = q[start : start + block]
            d2 = torch.addmm(r_sq, qb, r.T, alpha=-2.0).add_((qb * qb).sum(dim=1, keepdim=True))
            idx[start : start + block] = torch.topk(d2, k, dim=1, largest=False).indices.numpy()
    dist = _exact_distances(q64, r64, idx)
    order = np.argsort(dist, axis=1, kind="stable")
    return np.take_along_axis(dist, order, axis=1), np.take_along_axis(idx, order, axis=1)
