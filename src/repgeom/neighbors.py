"""Exact k-nearest neighbours: float32 blocked search, float64 distances for the kept ones."""

from __future__ import annotations

import numpy as np
import torch


def faiss_available() -> bool:
    """True when faiss (faiss-cpu) can be imported."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _faiss_search(q: np.ndarray, r: np.ndarray, kk: int) -> np.ndarray:
    import faiss

    index = faiss.IndexFlatL2(r.shape[1])
    index.add(np.ascontiguousarray(r, dtype=np.float32))
    return index.search(np.ascontiguousarray(q, dtype=np.float32), kk)[1]


def knn(
    query: np.ndarray,
    ref: np.ndarray | None = None,
    k: int = 2,
    block: int = 2048,
    backend: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Distances (float64, ascending) and indices of the k nearest rows of ``ref`` to each query.

    With ``ref=None`` the reference set is ``query`` itself and each point's own index is
    excluded (a duplicate of a point is still a neighbour, at distance 0). The search runs in
    float32 on centred data — faiss ``IndexFlatL2`` when installed (``backend`` 'auto' or
    'faiss'), else a blocked torch matmul ('torch') — and the kept neighbours' distances are
    recomputed in float64.
    """
    q64 = np.asarray(query, dtype=np.float64)
    self_search = ref is None
    r64 = q64 if self_search else np.asarray(ref, dtype=np.float64)
    if q64.ndim != 2 or r64.ndim != 2 or q64.shape[1] != r64.shape[1]:
        raise ValueError(f"query {q64.shape} and ref {r64.shape} must be (n, d) with the same d")
    n_ref = r64.shape[0] - (1 if self_search else 0)
    if k > n_ref:
        raise ValueError(f"k={k} neighbours asked for but only {n_ref} reference points")
    centre = r64.mean(axis=0)
    q = torch.from_numpy((q64 - centre).astype(np.float32))
    r = torch.from_numpy((r64 - centre).astype(np.float32))
    r_sq = (r * r).sum(dim=1)
    kk = k + 1 if self_search else k
    idx = np.empty((q.shape[0], k), dtype=np.int64)
    use_faiss = backend == "faiss" or (backend == "auto" and faiss_available())
    if use_faiss:
        found = _faiss_search(q.numpy(), r.numpy(), kk)
        if self_search:
            own = found == np.arange(len(found))[:, None]
            # drop the point itself, or the last neighbour where a tie pushed it out
            own[~own.any(axis=1), -1] = True
            found = found[~own].reshape(len(found), k)
        idx[:] = found
    for start in range(0, 0 if use_faiss else q.shape[0], block):
        qb = q[start : start + block]
        d2 = (qb * qb).sum(dim=1, keepdim=True) - 2.0 * qb @ r.T + r_sq
        if self_search:
            rows = torch.arange(qb.shape[0])
            d2[rows, rows + start] = float("inf")
        top = torch.topk(d2, kk, dim=1, largest=False).indices[:, :k]
        idx[start : start + block] = top.numpy()
    diff = q64[:, None, :] - r64[idx]
    dist = np.sqrt(np.einsum("nkd,nkd->nk", diff, diff))
    order = np.argsort(dist, axis=1, kind="stable")
    return np.take_along_axis(dist, order, axis=1), np.take_along_axis(idx, order, axis=1)
