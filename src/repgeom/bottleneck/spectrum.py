"""Singular spectrum of the LM head (output embedding) and singular entropy.

Definitions (Godey et al. 2024, section 4):

- W is the output embedding (LM head) of shape (V, d), the weight of the model's unembedding
  (:class:`repgeom.activations.architectures.Unembedding`): row v maps a final representation
  to the logit of token v (before the final soft-capping of the families that apply one, an
  element-wise map that is no part of W). Its singular values σ₁ ≥ … ≥ σ_r ≥ 0,
  r = min(V, d), are computed in float64.
- Singular entropy (the paper's definition) is the Kullback–Leibler divergence between the
  normalised singular value distribution pᵢ = σᵢ / Σⱼ σⱼ and the uniform distribution over the
  r values: KL(p ‖ U_r) = Σᵢ pᵢ log(r pᵢ) = log r − H(p), in nats. It is 0 when all singular values
  are equal (W a multiple of an isometry) and at most log r (all mass on σ₁): a *higher* value
  means a more degenerate (lower effective rank) head.
- ``singular_entropy_sq`` is the same divergence for the energy distribution qᵢ = σᵢ² / Σⱼ σⱼ²
  (the normalisation used by spectral-entropy effective-rank measures); it is reported beside the
  paper's definition and never substituted for it.

Two exact float64 routes are provided:

- ``"svd"``: LAPACK singular values of W (``scipy.linalg.svdvals``, divide and conquer).
- ``"gram"``: σᵢ = sqrt(λᵢ(G)) with G = WᵀW (d × d, float64) when V ≥ d (WWᵀ otherwise). Forming
  G squares the condition number: the absolute error of λᵢ is about ε·σ₁² (ε = 2.2e-16), so the
  relative error of σᵢ is about ε·(σ₁/σᵢ)² / 2. ``"auto"`` therefore takes the Gram route only
  when the matrix is tall (max(V, d) ≥ ``gram_ratio`` · min(V, d)) *and* the Gram spectrum shows
  σ₁/σ_r ≤ ``max_gram_condition`` (default 1e4: relative error of every σᵢ below ~1e-8);
  otherwise it recomputes with ``"svd"``. The tests check the Gram route against svdvals.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scipy.linalg
import xarray as xr

Method = Literal["auto", "svd", "gram"]


def as_float64_matrix(w: Any, name: str = "W") -> np.ndarray:
    """A 2-D float64 numpy copy of an array or torch tensor (any float dtype, bf16 included)."""
    if hasattr(w, "detach"):  # torch tensor: bfloat16 has no numpy dtype, go through float64
        import torch

        w = w.detach().to(device="cpu", dtype=torch.float64).numpy()
    x = np.asarray(w, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (V, d) matrix, got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{name} is empty (shape {x.shape})")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} holds NaN or infinite values; check the checkpoint")
    return x


def singular_values_svd(w: np.ndarray) -> np.ndarray:
    """Singular values of W, descending, float64 LAPACK (exact to float64 rounding)."""
    return scipy.linalg.svdvals(as_float64_matrix(w), overwrite_a=False, check_finite=False)


def singular_values_gram(w: np.ndarray) -> np.ndarray:
    """Singular values of W as sqrt of the eigenvalues of the smaller float64 Gram matrix.

    Descending. Relative error of σᵢ ≈ ε·(σ₁/σᵢ)²/2; see the module docstring for when to use it.
    """
    x = as_float64_matrix(w)
    g = x.T @ x if x.shape[0] >= x.shape[1] else x @ x.T
    lam = scipy.linalg.eigvalsh(g, overwrite_a=True, check_finite=False)
    return np.sqrt(np.clip(lam[::-1], 0.0, None))


def singular_values(
    w: Any,
    method: Method = "auto",
    gram_ratio: float = 8.0,
    max_gram_condition: float = 1e4,
) -> tuple[np.ndarray, str]:
    """Singular values (descending, float64) of W and the route that produced them."""
    x = as_float64_matrix(w)
    if method == "svd":
        return singular_values_svd(x), "svd"
    if method == "gram":
        return singular_values_gram(x), "gram"
    if method != "auto":
        raise ValueError(f"method must be 'auto', 'svd' or 'gram', got {method!r}")
    lo, hi = sorted(x.shape)
    if hi >= gram_ratio * lo:
        s = singular_values_gram(x)
        if s[-1] > 0 and s[0] / s[-1] <= max_gram_condition:
            return s, "gram"
    return singular_values_svd(x), "svd"


def _kl_to_uniform(weights: np.ndarray) -> float:
    """KL(p ‖ uniform) = log r − H(p) for p = weights / Σ weights (0·log 0 = 0), in nats."""
    total = weights.sum()
    if not total > 0:
        raise ValueError("all singular values are zero; singular entropy is undefined")
    p = weights / total
    nz = p[p > 0]
    return float(np.log(p.size) + np.sum(nz * np.log(nz)))


def singular_entropy(sigma: np.ndarray) -> float:
    """Godey et al.'s singular entropy: KL(σ/Σσ ‖ uniform over r) = log r − H(σ/Σσ), nats."""
    return _kl_to_uniform(_check_sigma(sigma))


def singular_entropy_sq(sigma: np.ndarray) -> float:
    """KL(σ²/Σσ² ‖ uniform over r) = log r − H(σ²/Σσ²), nats (energy-normalised variant)."""
    return _kl_to_uniform(_check_sigma(sigma) ** 2)


def _check_sigma(sigma: np.ndarray) -> np.ndarray:
    s = np.asarray(sigma, dtype=np.float64)
    if s.ndim != 1 or s.size == 0:
        raise ValueError(f"singular values must be a non-empty 1-D array, got shape {s.shape}")
    if not np.isfinite(s).all() or (s < 0).any():
        raise ValueError("singular values must be finite and non-negative")
    return s


def lm_head_spectrum(
    w: Any,
    method: Method = "auto",
    gram_ratio: float = 8.0,
    max_gram_condition: float = 1e4,
    attrs: dict[str, Any] | None = None,
) -> xr.Dataset:
    """Spectrum of one checkpoint's LM head W (V, d) as a Dataset over ``index`` (1 … r).

    Variables: ``sigma`` (index), ``sigma_normalised`` = σᵢ/σ₁ (index), and the scalars
    ``singular_entropy`` (paper's definition), ``singular_entropy_sq``, ``max_entropy`` = log r.
    Gather checkpoints with ``xr.concat(datasets, dim="step")``.
    """
    x = as_float64_matrix(w)
    s, route = singular_values(x, method, gram_ratio, max_gram_condition)
    r = s.size
    if not s[0] > 0:
        raise ValueError("W is all zeros; its spectrum and singular entropy are undefined")
    ds = xr.Dataset(
        {
            "sigma": (
                "index",
                s,
                {"long_name": "singular value of the LM head", "units": "1"},
            ),
            "sigma_normalised": (
                "index",
                s / s[0],
                {"long_name": "singular value divided by the largest one", "units": "1"},
            ),
            "singular_entropy": (
                (),
                singular_entropy(s),
                {
                    "long_name": "singular entropy KL(σ/Σσ ‖ uniform) = log r − H(σ/Σσ)",
                    "units": "nat",
                },
            ),
            "singular_entropy_sq": (
                (),
                singular_entropy_sq(s),
                {
                    "long_name": "energy singular entropy KL(σ²/Σσ² ‖ uniform)",
                    "units": "nat",
                },
            ),
            "max_entropy": (
                (),
                float(np.log(r)),
                {"long_name": "upper bound log r of the singular entropy", "units": "nat"},
            ),
        },
        coords={
            "index": (
                "index",
                np.arange(1, r + 1),
                {"long_name": "singular value index (1 = largest)", "units": "1"},
            )
        },
        attrs={
            "vocab_size": int(x.shape[0]),
            "hidden_size": int(x.shape[1]),
            "rank_bound": int(r),
            "svd_route": route,
            **(attrs or {}),
        },
    )
    return ds
