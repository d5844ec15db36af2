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
  is done (μ is scale invariant). ``twonn_microscope_llm`` is the notebook's own convention
  (``metrics.geometry.conventions.twonn_microscope: llm_microscope``), duplicates included.
- ``mle`` — Levina & Bickel (2005) with k neighbours: per point
  m̂ᵢ = [(1/(k − 1)) Σⱼ₌₁ᵏ⁻¹ log(Tₖ/Tⱼ)]⁻¹, combined as MacKay & Ghahramani propose, by the
  inverse of the mean of the inverses: d = 1 / mean(1/m̂ᵢ).

Neighbours come from :func:`repgeom.metrics.neighbors.neighbours` (duplicates removed, then one
exact search, :func:`repgeom.metrics.neighbors.knn`): a blocked float32 torch search by default
(``backend="faiss"`` uses faiss ``IndexFlatL2``); either way a few extra candidates are searched
and the kept distances are float64, so the result does not depend on the backend. Several
estimators of one sample from one search: :mod:`repgeom.metrics.estimators`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from repgeom.metrics.neighbors import neighbour_distances, neighbours

_MU_EPS = 1e-8  # LLM-Microscope's threshold for μ ≈ 1


@dataclass(frozen=True)
class IDEstimate:
    """One intrinsic-dimension estimate; ``float(estimate)`` is its value."""

    value: float
    n_points: int  # distinct points used
    n_duplicates: int  # exact duplicate rows removed

    def __float__(self) -> float:
        return self.value


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
    return _microscope_fit(np.sort(_check_ratios(mu)), keep, np.float64)


def _microscope_fit(mu: np.ndarray, keep: float, cdf_dtype: type) -> float:
    """LLM-Microscope's fit of the sorted ratios ``mu`` (those ≤ 1 + 1e-8 set aside but
    counted), its empirical CDF computed in ``cdf_dtype`` (the package's is float32)."""
    if not 0 < keep <= 1:
        raise ValueError(f"twonn_microscope keep fraction must be in (0, 1], got {keep}")
    n_all = len(mu)
    useless = int((mu <= 1 + _MU_EPS).sum())
    mu = mu[useless:]
    n = len(mu)
    f_emp = np.arange(1 + useless, n + 1 + useless).astype(cdf_dtype) / cdf_dtype(n_all)
    use = min(math.floor(n * keep + 1e-9), n - 1)
    if use < 1:
        raise ValueError(
            f"{n} ratio(s) above 1 among {n_all} points keep {use} for the fit; use more points"
        )
    dist = -np.log(cdf_dtype(1) - f_emp[:use]).astype(np.float64)
    return _slope_through_origin(np.log(mu[:use]), dist)


def twonn_microscope_llm(x: np.ndarray, keep: float = 0.2, backend: str = "auto") -> float:
    """What LLM-Microscope 0.0.7's ``intrinsic_dimension`` returns on the rows of x (its
    ``reduction_factor`` = 1/keep): float64 rows centred and divided by their mean norm, every
    row kept; a row whose nearest other row is closer than 1e-8 (a duplicate) gets μ = −1 and
    is set aside with the μ ≤ 1 + 1e-8, yet counted in the CDF; the CDF is float32, as there."""
    x64 = np.asarray(x, dtype=np.float64)
    if x64.ndim != 2 or len(x64) < 3 or not np.isfinite(x64).all():
        raise ValueError(f"expected ≥ 3 finite row vectors, got shape {x64.shape}")
    x64 = x64 - x64.mean(axis=0)
    scale = np.sqrt((x64 * x64).sum(axis=1)).mean()
    if not scale > 0:
        raise ValueError("every row is the same point: the intrinsic dimension is undefined")
    x64 /= scale
    r = neighbour_distances(x64, 2, backend)
    bad = r[:, 0] < _MU_EPS
    mu = np.where(bad, -1.0, r[:, 1] / np.where(bad, 1.0, r[:, 0]))
    return _microscope_fit(np.sort(mu), keep, np.float32)


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
    nb = neighbours(x, lambda n: (1, 2), backend)
    mu = nb.ratios(1, 2)
    return IDEstimate(twonn_from_ratios(mu, discard, fit), nb.n_points, nb.n_duplicates)


def twonn_microscope(x: np.ndarray, keep: float = 0.2, backend: str = "auto") -> IDEstimate:
    """LLM-Microscope's TwoNN of the rows of x (all of them; no subsampling)."""
    nb = neighbours(x, lambda n: (1, 2), backend)
    mu = nb.ratios(1, 2)
    return IDEstimate(twonn_microscope_from_ratios(mu, keep), nb.n_points, nb.n_duplicates)


def mle(x: np.ndarray, k: int = 20, backend: str = "auto") -> IDEstimate:
    """Levina–Bickel MLE (harmonic mean over points) of the rows of x (all of them)."""
    if k < 2:
        raise ValueError(f"the MLE needs k ≥ 2 neighbours, got mle_k={k}")
    nb = neighbours(x, lambda n: range(1, k + 1), backend)
    return IDEstimate(mle_from_distances(nb.distances), nb.n_points, nb.n_duplicates)


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
