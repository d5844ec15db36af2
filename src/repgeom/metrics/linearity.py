"""Layer-to-layer linearity ("Your Transformer is Secretly Linear", Razzhigaev et al. 2024)."""

from __future__ import annotations

import numpy as np


def linearity(x: np.ndarray, y: np.ndarray) -> float:
    """1 − ‖XA − Y‖²_F for the least-squares A, after centring X and Y and scaling each to unit
    Frobenius norm: 1 when Y is a linear map of X, about d/n for independent Gaussian X and Y.
    """
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"X {a.shape} and Y {b.shape} need the same rows (tokens)")
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        raise ValueError("a layer has zero variance; linearity is undefined")
    a, b = a / na, b / nb
    coef, *_ = np.linalg.lstsq(a, b, rcond=None)
    return float(1.0 - np.sum((a @ coef - b) ** 2))
