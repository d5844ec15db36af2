"""The intrinsic-dimension estimators the languages study names (``languages.id_estimator``),
as functions of one (n, d) sample: ``id_fn(x) -> float | array | IDValues``. An estimator that
returns an array (one value per repeat, e.g. per random subsample) is reduced to its mean, and
the spread over repeats is kept next to it (:func:`repgeom.metrics.estimators.repeat_spread`;
NaN for one value). An :class:`IDValues` carries GRIDE over scales too, computed from the same
neighbour search as the ID (:func:`id_gride_function`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from repgeom.metrics.estimators import REGISTRY, IDOptions, estimate_sample, repeat_spread
from repgeom.sampling import seeded_subsample


@dataclass(frozen=True)
class IDValues:
    """The ID on each repeat, and GRIDE's ids and errors over the scales n₁ = 1, 2, 4, … on the
    first repeat's subsample, from one neighbour search per subsample."""

    values: np.ndarray
    gride: np.ndarray
    gride_error: np.ndarray


IdFn = Callable[[np.ndarray], float | np.ndarray | IDValues]
GrideFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]

# The estimators a config names (languages.id_estimator): the registry's estimator and the
# parameters the name stands for.
ID_ESTIMATORS: dict[str, tuple[str, IDOptions]] = {
    # repgeom's TwoNN as repgeom.metrics.intrinsic.twonn computes it by default
    "twonn": ("twonn", IDOptions(twonn_discard=0.1, twonn_fit="lsq")),
    # scikit-dimension's TwoNN, pinned: discard_fraction 0.1, least squares through the origin;
    # the configuration of the per-language LLM-Microscope study (on mean-pooled vectors)
    "skdim_twonn": ("twonn", IDOptions(twonn_discard=0.1, twonn_fit="lsq")),
    # LLM-Microscope's own TwoNN (the smallest 20 % of the ratios)
    "twonn_microscope": ("twonn_microscope", IDOptions(microscope_keep=0.2)),
}


def id_gride_function(
    name: str, sample: int, repeats: int = 1, seed: int = 0, gride_scales: int = 0
) -> Callable[[np.ndarray], IDValues]:
    """``fn(x)`` → :class:`IDValues`: the named estimator on ``repeats`` seeded subsamples of
    ``sample`` rows of x (all rows, once per repeat, when x has at most ``sample``), and GRIDE
    at n₁ = 1 … 2^(gride_scales−1) (none when 0) on the first of them — NaN at the scales whose
    n₂ exceeds its distinct points − 1 and where the likelihood has no root — with one
    neighbour search per subsample (:func:`repgeom.metrics.estimators.estimate_sample`).

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
    options = dataclasses.replace(options, gride_scales=gride_scales)
    value = REGISTRY[which].variables[0].name
    first = (which, "gride") if gride_scales else (which,)

    def fn(x: np.ndarray) -> IDValues:
        x = np.asarray(x)
        values: list[float] = []
        gride = (np.zeros(0), np.zeros(0))
        for r in range(repeats):
            rows = seeded_subsample(x.shape[0], sample, seed, r)
            if r > 0 and len(rows) == x.shape[0]:
                values.append(values[0])  # every repeat is the whole array
                continue
            est = estimate_sample(x[rows], options, first if r == 0 else (which,))
            values.append(est[value])
            if r == 0 and gride_scales:
                gride = (est["gride"], est["gride_error"])
        return IDValues(np.array(values), *gride)

    fn.__name__ = name
    return fn


def id_function(
    name: str, sample: int, repeats: int = 1, seed: int = 0
) -> Callable[[np.ndarray], np.ndarray]:
    """``id_fn(x)``: the named estimator on ``repeats`` seeded subsamples of ``sample`` rows of
    x, one value per repeat (:func:`id_gride_function` without GRIDE)."""
    fn = id_gride_function(name, sample, repeats, seed)

    def id_fn(x: np.ndarray) -> np.ndarray:
        return fn(x).values

    id_fn.__name__ = name
    return id_fn


def float64_rows(x: np.ndarray) -> np.ndarray:
    """float64 stays float64; any other dtype becomes float32 (never compute in float16)."""
    x = np.asarray(x)
    return x if x.dtype == np.float64 else x.astype(np.float32)


def mean_spread(values: float | np.ndarray | IDValues, n: int) -> tuple[float, float]:
    v = values.values if isinstance(values, IDValues) else values
    v = np.asarray(v, dtype=np.float64).ravel()
    if v.size == 0 or not np.isfinite(v).all():
        raise ValueError(f"the ID estimator returned {v!r} for {n} points; need finite")
    return float(v.mean()), float(repeat_spread(v))


def id_value(id_fn: IdFn, x: np.ndarray) -> tuple[float, float]:
    """(mean, spread over repeats) of ``id_fn(x)``; the spread is NaN for a single value."""
    return mean_spread(id_fn(x), x.shape[0])


def estimates_of(
    id_fn: IdFn, gride_fn: GrideFn | None, x: np.ndarray
) -> tuple[float, float, tuple[np.ndarray, np.ndarray] | None]:
    """(mean ID, its spread, GRIDE (ids, errors) or None) of x: GRIDE from ``id_fn``'s
    :class:`IDValues` when it has scales, else from ``gride_fn``."""
    res = id_fn(x)
    mean, spread = mean_spread(res, x.shape[0])
    has_gride = isinstance(res, IDValues) and res.gride.size > 0
    if has_gride and gride_fn is not None:
        raise ValueError("GRIDE given twice: by the ID function's IDValues and by gride_fn")
    if has_gride:
        return mean, spread, (res.gride, res.gride_error)
    return mean, spread, None if gride_fn is None else gride_fn(x)
