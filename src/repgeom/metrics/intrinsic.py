"""Intrinsic dimension: TwoNN (Facco et al. 2017), LLM-Microscope's TwoNN, Levina–Bickel MLE.

All estimators work on exact nearest neighbours of the *centred* float64 data. Exact duplicate
rows (r₁ = 0, where μ = r₂/r₁ and the MLE are undefined) are removed first, keeping one copy of
each; their number is reported (``n_duplicates``) and no estimate is ever inf or NaN.

Conventions, with N the number of distinct points and μ₍₁₎ ≤ … ≤ μ₍N₎ the sorted ratios r₂/r₁:

- ``twonn(fit="lsq")`` — scikit-dimension's ``TwoNN`` (version 0.5): keep the
  m = int(N·(1 − discard)) smallest μ (at most N − 1, since F = 1 has no logarithm), empirical
  F₍ᵢ₎ = i/N for i = 1 … m, and fit −log(1 − F) = d·log μ by least squares through the origin:
  d = Σ log μ₍ᵢ₎·(−log(1 − F₍ᵢ₎)) / Σ (log μ₍ᵢ₎)².
- ``twonn(fit="mle")`` — the maximum-likelihood form, the discarded largest ratios treated as
  censored at μ₍ₘ₎ (scikit-dimension's ``method="mle"``):
  d = (m − 1) / (Σᵢ₌₁ᵐ log μ₍ᵢ₎ + (N − m)·log μ₍ₘ₎), with m = int(N·(1 − discard)); with no
  discard this is (N − 1) / Σ log μᵢ, the unbiased MLE of the Pareto exponent (Facco et al.,
  eq. 5, and DADApy's "ml" estimator).
- ``twonn_microscope`` — LLM-Microscope's ``intrinsic_dimension``: sort μ; the u ratios with
  μ ≤ 1 + 1e-8 (equidistant first and second neighbours) are set aside but kept in the count;
  the rest get F = (u + i)/N for i = 1 … N − u (1-based); the fit through the origin uses only
  the first min(⌊(N − u)·keep⌋, N − u − 1) of them (keep = 0.2: the smallest 20 % of μ).
  Differences from the notebook: exact duplicates are removed beforehand (the notebook counted
  points with r₁ < 1e-8 among the u set-aside ones and in N), and no rescaling by the mean norm
  is done (μ is scale invariant).
- ``mle`` — Levina & Bickel (2005) with k neighbours: per point
  m̂ᵢ = [(1/(k − 1)) Σⱼ₌₁ᵏ⁻¹ log(Tₖ/Tⱼ)]⁻¹, combined as MacKay & Ghahramani propose, by the
  inverse of the mean of the inverses: d = 1 / mean(1/m̂ᵢ).

Neighbours come from :func:`repgeom.metrics.neighbors.knn`: a blocked float32 torch search by
default (``backend="faiss"`` uses faiss ``IndexFlatL2``); either way a few extra candidates are
searched and the kept distances are float64, so the result does not depend on the backend.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from repgeom.metrics.neighbors import RANK_WINDOW, knn
from repgeom.sampling import seeded_subsample

ESTIMATORS = ("twonn", "twonn_microscope", "mle")
_MARGIN = RANK_WINDOW  # extra float32 candidates, so float32 ties cannot change the exact k
_QUERY_BLOCK = 512
_MU_EPS = 1e-8  # LLM-Microscope's threshold for μ ≈ 1


@dataclass(frozen=True)
class IDEstimate:
    """One intrinsic-dimension estimate; ``float(estimate)`` is its value."""

    value: float
    n_points: int  # distinct points used
    n_duplicates: int  # exact duplicate rows removed

    def __float__(self) -> float:
        return self.value


@dataclass(frozen=True)
class IDRepeats:
    """Estimates on seeded subsamples: ``values[name]`` is a (repeats,) array per estimator."""

    values: dict[str, np.ndarray]
    n_points: np.ndarray
    n_duplicates: np.ndarray

    def mean(self, name: str) -> float:
        """Mean over repeats of one estimator."""
        return float(self.values[name].mean())

    def std(self, name: str) -> float:
        """Standard deviation (ddof = 0) over repeats of one estimator."""
        return float(self.values[name].std())


# --- estimators on ratios and distances -------------------------------------------------------


def twonn_from_ratios(mu: np.ndarray, discard: float = 0.1, fit: str = "lsq") -> float:
    """TwoNN from the ratios μ = r₂/r₁ of N distinct points (conventions in the module doc)."""
    mu = np.sort(_check_ratios(mu))
    n = len(mu)
    if fit not in ("lsq", "mle"):
        raise ValueError(f"twonn fit must be 'lsq' or 'mle', got {fit!r}")
    if not 0 <= discard < 1:
        raise ValueError(f"twonn discard fraction must be in [0, 1), got {discard}")
    m = int(n * (1 - discard))
    if fit == "mle":
        log_mu = np.log(mu[:m])
        total = log_mu.sum() + (n - m) * log_mu[-1]
        if m < 2 or total <= 0:
            raise ValueError("all kept μ = r₂/r₁ equal 1; the TwoNN dimension is undefined")
        return float((m - 1) / total)
    m = min(m, n - 1)
    if m < 2:
        raise ValueError(f"only {m} ratio(s) left after discarding {discard} of {n}; need ≥ 2")
    x = np.log(mu[:m])
    y = -np.log(1.0 - np.arange(1, m + 1) / n)
    return _slope_through_origin(x, y)


def twonn_microscope_from_ratios(mu: np.ndarray, keep: float = 0.2) -> float:
    """LLM-Microscope's TwoNN from the ratios μ of N distinct points (see the module doc)."""
    if not 0 < keep <= 1:
        raise ValueError(f"twonn_microscope keep fraction must be in (0, 1], got {keep}")
    mu = np.sort(_check_ratios(mu))
    n_all = len(mu)
    useless = int((mu <= 1 + _MU_EPS).sum())
    mu = mu[useless:]
    n = len(mu)
    f_emp = np.arange(1 + useless, n + 1 + useless) / n_all
    use = min(math.floor(n * keep + 1e-9), n - 1)
    if use < 1:
        raise ValueError(
            f"{n} ratio(s) above 1 among {n_all} points keep {use} for the fit; use more points"
        )
    return _slope_through_origin(np.log(mu[:use]), -np.log(1.0 - f_emp[:use]))


def twonn_bootstrap_error(
    mu: np.ndarray, n_boot: int = 200, seed: int = 0, discard: float = 0.1, fit: str = "lsq"
) -> float:
    """Bootstrap standard error of TwoNN: the standard deviation (ddof = 1) of
    :func:`twonn_from_ratios` over ``n_boot`` resamples, with replacement and seeded, of the N
    ratios μ (each the size of μ), as if the μ were independent, as the likelihood assumes."""
    mu = _check_ratios(mu)
    if n_boot < 2:
        raise ValueError(f"the TwoNN bootstrap needs n_boot ≥ 2 resamples, got {n_boot}")
    rng = np.random.default_rng(seed)
    values = [
        twonn_from_ratios(mu[rng.integers(0, len(mu), size=len(mu))], discard, fit)
        for _ in range(n_boot)
    ]
    return float(np.std(values, ddof=1))


def mle_from_distances(dist: np.ndarray) -> float:
    """Levina–Bickel MLE with k = dist.shape[1] neighbours, harmonic (MacKay–Ghahramani) mean.

    ``dist`` is (n, k): each point's distances to its k nearest other points, ascending, > 0.
    """
    t = np.asarray(dist, dtype=np.float64)
    if t.ndim != 2 or t.shape[1] < 2 or t.shape[0] < 1:
        raise ValueError(f"the MLE needs (n, k ≥ 2) neighbour distances, got shape {t.shape}")
    if not (np.isfinite(t).all() and (t > 0).all()):
        raise ValueError("neighbour distances must be finite and > 0; remove duplicate points")
    k = t.shape[1]
    inv = np.log(t[:, -1:] / t[:, :-1]).sum(axis=1) / (k - 1)
    mean_inv = inv.mean()
    if mean_inv <= 0:
        raise ValueError("every point's k neighbours are equidistant; the MLE is undefined")
    return float(1.0 / mean_inv)


# --- estimators on data -----------------------------------------------------------------------


def twonn(
    x: np.ndarray, discard: float = 0.1, fit: str = "lsq", backend: str = "auto"
) -> IDEstimate:
    """TwoNN intrinsic dimension of the rows of x (all of them; no subsampling)."""
    return id_estimates(x, ("twonn",), discard=discard, fit=fit, backend=backend)["twonn"]


def twonn_microscope(x: np.ndarray, keep: float = 0.2, backend: str = "auto") -> IDEstimate:
    """LLM-Microscope's TwoNN of the rows of x (all of them; no subsampling)."""
    est = id_estimates(x, ("twonn_microscope",), keep=keep, backend=backend)
    return est["twonn_microscope"]


def mle(x: np.ndarray, k: int = 20, backend: str = "auto") -> IDEstimate:
    """Levina–Bickel MLE (harmonic mean over points) of the rows of x (all of them)."""
    return id_estimates(x, ("mle",), k=k, backend=backend)["mle"]


def id_estimates(
    x: np.ndarray,
    which: Sequence[str] = ESTIMATORS,
    discard: float = 0.1,
    fit: str = "lsq",
    keep: float = 0.2,
    k: int = 20,
    backend: str = "auto",
) -> dict[str, IDEstimate]:
    """Several estimators of one array from one neighbour search (duplicates removed first)."""
    unknown = set(which) - set(ESTIMATORS)
    if unknown or not which:
        raise ValueError(f"unknown ID estimator(s) {sorted(unknown)}; choose from {ESTIMATORS}")
    if "mle" in which and k < 2:
        raise ValueError(f"the MLE needs k ≥ 2 neighbours, got mle_k={k}")
    xu, n_dup = remove_duplicates(x)
    n = xu.shape[0]
    kk = max(2, k) if "mle" in which else 2
    if n < kk + 1:
        raise ValueError(
            f"{n} distinct point(s) ({n_dup} duplicates removed) but {kk} neighbours are needed; "
            "use more points"
        )
    dist = neighbour_distances(xu, kk, backend=backend)  # the search centres the data
    values = estimates_from_distances(dist, which, discard, fit, keep, k)
    return {name: IDEstimate(value, n, n_dup) for name, value in values.items()}


def estimates_from_distances(
    dist: np.ndarray,
    which: Sequence[str] = ESTIMATORS,
    discard: float = 0.1,
    fit: str = "lsq",
    keep: float = 0.2,
    k: int = 20,
) -> dict[str, float]:
    """The estimators from each distinct point's float64 distances to its nearest neighbours
    (n, ≥ 2 columns: ranks 1, 2, …; the MLE uses the first k)."""
    mu = dist[:, 1] / dist[:, 0]
    out: dict[str, float] = {}
    for name in which:
        if name == "twonn":
            out[name] = twonn_from_ratios(mu, discard=discard, fit=fit)
        elif name == "twonn_microscope":
            out[name] = twonn_microscope_from_ratios(mu, keep=keep)
        else:
            out[name] = mle_from_distances(dist[:, :k])
    return out


def intrinsic_dimension(
    x: np.ndarray,
    sample: int = 4096,
    repeats: int = 5,
    seed: int = 0,
    which: Sequence[str] = ESTIMATORS,
    **estimator_options: float | int | str,
) -> IDRepeats:
    """Estimators on ``repeats`` seeded subsamples of ``sample`` rows (all rows when x has no
    more; :func:`repgeom.metrics.layerwise.seeded_subsample`).

    ``estimator_options`` are passed to :func:`id_estimates` (discard, fit, keep, k, backend).
    """
    x = np.asarray(x)
    if sample < 3 or repeats < 1:
        raise ValueError(f"need id_sample ≥ 3 and id_repeats ≥ 1, got {sample} and {repeats}")
    picks = [seeded_subsample(x.shape[0], sample, seed, r) for r in range(repeats)]
    results = []
    for r, rows in enumerate(picks):
        if r > 0 and len(rows) == x.shape[0]:
            results.append(results[0])  # every repeat is the whole array
        else:
            results.append(id_estimates(x[rows], which, **estimator_options))
    return IDRepeats(
        values={name: np.array([res[name].value for res in results]) for name in which},
        n_points=np.array([res[which[0]].n_points for res in results]),
        n_duplicates=np.array([res[which[0]].n_duplicates for res in results]),
    )


# --- neighbours and duplicates ----------------------------------------------------------------


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

    The float32 search (:func:`repgeom.metrics.neighbors.knn`, torch or faiss) returns a margin of
    extra candidates, re-ranked by float64 distance, so float32 ties cannot change the k kept.
    """
    n = np.asarray(x).shape[0]
    if not 1 <= k <= n - 1:
        raise ValueError(f"k={k} neighbours asked for among {n} points; need 1 ≤ k ≤ n − 1")
    if ranks is not None and not 1 <= np.min(ranks) <= np.max(ranks) <= k:
        raise ValueError(f"neighbour ranks must lie in 1 … k={k}, got {ranks}")
    kk = min(k + _MARGIN, n - 1)
    dist, _ = knn(x, None, k=kk, block=_QUERY_BLOCK, backend=backend, ranks=ranks)
    return dist if ranks is not None else dist[:, :k]


# --- helpers ----------------------------------------------------------------------------------


def _check_ratios(mu: np.ndarray) -> np.ndarray:
    mu = np.asarray(mu, dtype=np.float64).ravel()
    if len(mu) < 3:
        raise ValueError(f"TwoNN needs at least 3 points, got {len(mu)}")
    if not (np.isfinite(mu).all() and (mu >= 1).all()):
        raise ValueError("μ = r₂/r₁ must be finite and ≥ 1; remove duplicate points first")
    return mu


def _slope_through_origin(x: np.ndarray, y: np.ndarray) -> float:
    sxx = float(x @ x)
    if sxx <= 0:
        raise ValueError("all μ in the fit equal 1; the TwoNN dimension is undefined")
    return float(x @ y / sxx)


# --- estimators by name ----------------------------------------------------------------------

# configured estimators by the name a config gives (languages.id_estimator): (estimator of
# ESTIMATORS, its options)
ID_ESTIMATORS: dict[str, tuple[str, dict[str, Any]]] = {
    # repgeom's default TwoNN (whatever repgeom.metrics.intrinsic.twonn defaults to)
    "twonn": ("twonn", {}),
    # scikit-dimension's TwoNN, pinned: discard_fraction 0.1, least squares through the origin;
    # the configuration of the per-language LLM-Microscope study (on mean-pooled vectors)
    "skdim_twonn": ("twonn", {"discard": 0.1, "fit": "lsq"}),
    # LLM-Microscope's own TwoNN (the smallest 20 % of the ratios)
    "twonn_microscope": ("twonn_microscope", {}),
}


def id_function(
    name: str, sample: int, repeats: int = 1, seed: int = 0
) -> Callable[[np.ndarray], np.ndarray]:
    """``id_fn(x)``: the named estimator on ``repeats`` seeded subsamples of ``sample`` rows of
    x (all rows, once per repeat, when x has at most ``sample``), one value per repeat.

    The subsamples depend only on ``seed`` and the number of rows, so a store's tokens are
    subsampled the same way at every layer.
    """
    if name not in ID_ESTIMATORS:
        raise ValueError(f"unknown ID estimator {name!r}; choose one of {sorted(ID_ESTIMATORS)}")
    if sample < 3:
        raise ValueError(f"id_sample must be ≥ 3, got {sample}")
    if repeats < 1:
        raise ValueError(f"id_repeats must be ≥ 1, got {repeats}")
    which, options = ID_ESTIMATORS[name]

    def id_fn(x: np.ndarray) -> np.ndarray:
        res = intrinsic_dimension(x, sample, repeats, seed, which=(which,), **options)
        return res.values[which]

    id_fn.__name__ = name
    return id_fn
