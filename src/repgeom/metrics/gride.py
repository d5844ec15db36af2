"""GRIDE: intrinsic dimension as a function of neighbourhood scale (Denti et al. 2022, Sci Rep).

For each distinct point the ratio μ = r_{n₂}/r_{n₁} of its n₂-th and n₁-th nearest-neighbour
distances (n₁ < n₂) has, for points uniform on a d-dimensional manifold, the density

    f(μ | d) = d (μᵈ − 1)^(n₂−n₁−1) / (B(n₂ − n₁, n₁) μ^((n₂−1)d + 1)),   μ > 1,

that is, μ⁻ᵈ ~ Beta(n₁, n₂ − n₁) (n₁ = 1, n₂ = 2 is TwoNN's Pareto law). With
ℓ(d) = Σᵢ log f(μᵢ | d) over the N ratios, the conventions are DADApy 0.3's
``return_id_scaling_gride``, matched value for value:

- scales: n₁ = 1, 2, 4, …, 2^(S−1) with n₂ = 2n₁ (DADApy's ``range_max`` = 2^S), from one
  exact neighbour search (:func:`repgeom.metrics.neighbors.neighbours`, the search TwoNN uses,
  asked for the float64 distances at ranks 1, 2, 4, …, 2^S) on the distinct rows (exact
  duplicates removed first and counted; DADApy keeps them at distance ε instead);
- estimate: ratios equal to 1 are moved to 1 + 10·ε₆₄; those with μ ≥ q₅₀ + 20(q₉₅ − q₅₀)
  (linear-interpolation percentiles of that scale's ratios) are left out as near-overlapping
  points; d̂ is the root of ∂/∂d [ℓ(d) − log d] over the M kept ratios — the likelihood with
  (M − 1) log d, as TwoNN's unbiased MLE (M − 1)/Σ log μ, which it equals at n₁ = 1 — where
  the derivative uses max(1 − μ⁻ᵈ, 2·10⁻⁷) in its denominator; the root is found by ``brentq``
  in [d_min, d_max] = [10⁻³, 10³] (DADApy bisects the same function there to 10⁻⁷, and
  returns a bracket's end where there is no root; repgeom raises ValueError);
- error: 1/√I(d̂) with I the observed information of the full likelihood over all N ratios,
  I(d) = N/d² + (n₂ − n₁ − 1) Σᵢ (log μᵢ)² μᵢ⁻ᵈ / max(1 − μᵢ⁻ᵈ, 5ε₆₄)², 1 − μ⁻ᵈ computed as
  −expm1(−d log μ) (DADApy's 1 − μ⁻ᵈ keeps about 2 digits for μ = 1 + 10ε₆₄);
- scale: the mean over the N points of (r_{n₁} + r_{n₂})/2, the average distance of the two
  neighbours that enter the ratio.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from repgeom.metrics.neighbors import Neighbours, TooFewPoints, neighbours
from repgeom.sampling import seeded_subsample

_EPS64 = float(np.finfo(np.float64).eps)
_DERIVATIVE_FLOOR = 2e-7  # DADApy's 2·eps with its bisection precision eps = 1e-7
_FISHER_FLOOR = 5 * _EPS64
_OUTLIER_SPREAD = 20.0  # ratios beyond q50 + 20·(q95 − q50) are left out of the estimate


@dataclass(frozen=True)
class GrideScaling:
    """GRIDE at n₁ = 1, 2, 4, …: arrays of length ``n_scales`` (definitions in the module doc)."""

    n1: np.ndarray  # int64 neighbour ranks n₁
    n2: np.ndarray  # int64 neighbour ranks n₂ = 2n₁
    id: np.ndarray  # float64 maximum-likelihood intrinsic dimension
    id_error: np.ndarray  # float64 statistical error 1/√I(d̂)
    scale: np.ndarray  # float64 mean over points of (r_{n₁} + r_{n₂})/2
    n_points: int  # distinct points used
    n_duplicates: int  # exact duplicate rows removed


def gride_scales(n_scales: int) -> tuple[np.ndarray, np.ndarray]:
    """Neighbour ranks n₁ = 1, 2, …, 2^(n_scales−1) and n₂ = 2n₁ (int64 arrays)."""
    if not 1 <= n_scales <= 30:
        raise ValueError(f"gride needs 1 ≤ n_scales ≤ 30, got {n_scales}")
    n1 = 2 ** np.arange(n_scales, dtype=np.int64)
    return n1, 2 * n1


def gride_from_ratios(
    mu: np.ndarray, n1: int, n2: int | None = None, d_min: float = 1e-3, d_max: float = 1e3
) -> tuple[float, float]:
    """GRIDE estimate and its error (d̂, 1/√I(d̂)) from the ratios μ = r_{n₂}/r_{n₁} of N points."""
    from scipy.optimize import brentq  # with the first estimate, not when the registry is read

    n2 = 2 * n1 if n2 is None else n2
    if not 1 <= n1 < n2:
        raise ValueError(f"gride needs neighbour ranks 1 ≤ n1 < n2, got n1={n1}, n2={n2}")
    if not 0 < d_min < d_max:
        raise ValueError(f"gride needs 0 < d_min < d_max, got {d_min} and {d_max}")
    mu = np.array(mu, dtype=np.float64).ravel()  # a copy: ratios equal to 1 are moved below
    if len(mu) < 3:
        raise ValueError(f"gride needs at least 3 ratios, got {len(mu)}")
    if not (np.isfinite(mu).all() and (mu >= 1).all()):
        raise ValueError("μ = r_n2/r_n1 must be finite and ≥ 1; remove duplicate points first")
    mu[mu == 1] += 10 * _EPS64
    log_mu = np.log(mu)
    q95, q50 = np.percentile(mu, [95, 50])
    threshold = q50 + _OUTLIER_SPREAD * (q95 - q50)
    kept = log_mu[mu < threshold]
    m = len(kept)
    if m < 2:
        raise ValueError(
            f"only {m} of {len(mu)} ratios lie below gride's outlier threshold "
            f"q50 + 20·(q95 − q50) = {threshold:.6g} at n1={n1}: most points' neighbours n1 "
            f"and n2 are equidistant"
        )
    gap = float(n2 - n1 - 1)
    sum_log = float(kept.sum())

    def neg_score(d: float) -> float:  # −∂/∂d [ℓ(d) − log d] on the kept ratios; increasing in d
        one_minus = np.maximum(-np.expm1(-d * kept), _DERIVATIVE_FLOOR)
        return (n2 - 1) * sum_log - gap * float((kept / one_minus).sum()) - (m - 1) / d

    low, high = neg_score(d_min), neg_score(d_max)
    if not low < 0 < high:
        side = "above d_max" if high <= 0 else "below d_min"
        raise ValueError(
            f"the gride likelihood (n1={n1}, n2={n2}) peaks {side}, outside "
            f"[{d_min}, {d_max}]; widen d_min/d_max"
        )
    d_hat = float(brentq(neg_score, d_min, d_max, xtol=1e-13, rtol=4 * _EPS64, maxiter=500))
    return d_hat, float(1.0 / np.sqrt(_information(d_hat, mu, n1, n2)))


def gride_from_distances(
    dist: np.ndarray, d_min: float = 1e-3, d_max: float = 1e3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GRIDE ids, errors and scales at n₁ = 1 … 2^(S−1) from each distinct point's float64
    distances ``dist`` (n, S + 1) to its neighbours of ranks 1, 2, 4, …, 2^S (all > 0)."""
    dist = np.asarray(dist, dtype=np.float64)
    if dist.ndim != 2 or dist.shape[1] < 2:
        raise ValueError(
            f"gride needs (n, S + 1) distances at ranks 1, 2, …, 2^S, got {dist.shape}"
        )
    if not (np.isfinite(dist).all() and (dist > 0).all()):
        raise ValueError("neighbour distances must be finite and > 0; remove duplicate points")
    n_scales = dist.shape[1] - 1
    gride_scales(n_scales)  # validates the number of scales
    ids, errors, scales = (np.empty(n_scales) for _ in range(3))
    for s in range(n_scales):
        ids[s], errors[s], scales[s] = _at_scale(dist, s, d_min, d_max)
    return ids, errors, scales


def fitting_scales(n_points: int, n_scales: int) -> int:
    """How many of the scales n₁ = 1 … 2^(n_scales−1) ``n_points`` distinct points allow
    (n₂ = 2n₁ ≤ n_points − 1)."""
    return min(n_scales, int(np.log2(n_points - 1))) if n_points > 2 else 0


def gride(
    x: np.ndarray,
    n_scales: int = 8,
    backend: str = "auto",
    d_min: float = 1e-3,
    d_max: float = 1e3,
) -> GrideScaling:
    """GRIDE of the rows of x at n₁ = 1, 2, …, 2^(n_scales−1), from one exact kNN search."""
    n1, n2 = gride_scales(n_scales)
    try:
        nb = neighbours(x, lambda n: np.r_[n1, n2[-1]], backend)  # 1, 2, 4, …, 2^n_scales
    except TooFewPoints as e:
        fits = fitting_scales(e.n_points, n_scales)
        lower = f"lower n_scales to {fits} or " if fits else ""
        raise ValueError(
            f"gride at {n_scales} scales needs {n2[-1]} neighbours, so at least {n2[-1] + 1} "
            f"distinct points; got {e.n_points} ({e.n_duplicates} duplicates removed): "
            f"{lower}use more points"
        ) from None
    ids, errors, scales = gride_from_distances(nb.distances, d_min, d_max)
    return GrideScaling(n1, n2, ids, errors, scales, nb.n_points, nb.n_duplicates)


def gride_columns(dist: np.ndarray, n_scales: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GRIDE ids, errors and scales at n₁ = 1 … 2^(n_scales−1) from distances ``dist`` (n, F + 1)
    at ranks 1, 2, …, 2^F (F ≤ n_scales); NaN beyond F and where the likelihood has no root."""
    ids, errors, scales = (np.full(n_scales, np.nan) for _ in range(3))
    for s in range(min(n_scales, dist.shape[1] - 1)):
        try:
            ids[s], errors[s], scales[s] = _at_scale(dist, s)
        except ValueError:  # every neighbour pair equidistant, or no root in the bracket
            continue
    return ids, errors, scales


def gride_ranks(n_points: int, n_scales: int) -> tuple[int, ...]:
    """The neighbour ranks 1, 2, 4, …, 2^F that GRIDE at ``n_scales`` scales uses on
    ``n_points`` distinct points (F = :func:`fitting_scales`; none when F = 0)."""
    if n_scales:
        gride_scales(n_scales)  # validates n_scales
    fit = fitting_scales(n_points, n_scales)
    return tuple(2**s for s in range(fit + 1)) if fit else ()


def gride_of(nb: Neighbours, n_scales: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GRIDE ids, errors and scales at n₁ = 1 … 2^(n_scales−1) from the neighbours of
    :func:`gride_ranks` (:func:`gride_columns`: NaN where they do not reach)."""
    ranks = gride_ranks(nb.n_points, n_scales)
    if not ranks:
        return tuple(np.full(n_scales, np.nan) for _ in range(3))
    return gride_columns(nb.at(*ranks), n_scales)


def gride_function(
    n_scales: int, sample: int, seed: int = 0
) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``fn(x)`` → (ids, errors) of GRIDE at n₁ = 1 … 2^(n_scales−1) on the seeded subsample of
    ``sample`` rows that an ID estimate's first repeat uses
    (:func:`repgeom.sampling.seeded_subsample`); NaN at the scales whose n₂ exceeds the distinct
    points − 1, and where the likelihood has no root."""
    gride_scales(n_scales)  # validates n_scales

    def fn(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x)
        rows = seeded_subsample(x.shape[0], sample, seed)
        nb = neighbours(x[rows], lambda n: gride_ranks(n, n_scales))
        ids, errors, _ = gride_of(nb, n_scales)
        return ids, errors

    return fn


# --- helpers ----------------------------------------------------------------------------------


def _at_scale(
    dist: np.ndarray, s: int, d_min: float = 1e-3, d_max: float = 1e3
) -> tuple[float, float, float]:
    """(id, error, scale) at n₁ = 2^s from the distance columns of ranks 2^s and 2^(s+1)."""
    near, far = dist[:, s], dist[:, s + 1]
    d, error = gride_from_ratios(far / near, 2**s, 2 ** (s + 1), d_min, d_max)
    return d, error, 0.5 * (near.mean() + far.mean())


def _information(d: float, mu: np.ndarray, n1: int, n2: int) -> float:
    """Observed information −ℓ''(d) of the GRIDE likelihood over all ratios μ (DADApy's form)."""
    log_mu = np.log(np.asarray(mu, dtype=np.float64))
    mu_d = np.exp(-d * log_mu)
    one_minus = np.maximum(-np.expm1(-d * log_mu), _FISHER_FLOOR)
    return len(log_mu) / d**2 + (n2 - n1 - 1) * float(((log_mu / one_minus) ** 2 * mu_d).sum())
