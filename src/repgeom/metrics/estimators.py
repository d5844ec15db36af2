"""The intrinsic-dimension estimators, each declared once, and the one search that feeds them.

An :class:`Estimator` says which neighbour ranks it needs (given its options and the number of
distinct points), how it computes its variables from the distances at those ranks, and what the
variables are (name, long_name, units) and over which dims (one value per subsample, or per
subsample and GRIDE scale). :func:`estimate_sample` removes a sample's duplicate rows, runs one
exact neighbour search up to the largest rank any chosen estimator needs and hands the table to
each of them; the geometry job (:mod:`repgeom.metrics.geometry`) and the languages study
(:mod:`repgeom.languages.estimates`) call it once per subsample. Dataset variables, their attrs and
the Shape-of-Learning table columns are read from :data:`REGISTRY`.

This module loads without torch or scipy (the workflow reads the registry when it plans).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from repgeom.metrics.gride import gride_of, gride_ranks, gride_scales
from repgeom.metrics.intrinsic import (
    mle_from_distances,
    twonn_bootstrap_error,
    twonn_from_ratios,
    twonn_microscope_from_ratios,
)
from repgeom.metrics.neighbors import Neighbours, neighbours


@dataclass(frozen=True)
class IDOptions:
    """The estimators' parameters, named as in the config's ``metrics.geometry``. None: not
    given; an estimator that reads it refuses to run (``twonn_bootstrap`` None or < 2: no
    TwoNN error, NaN)."""

    twonn_discard: float | None = None
    twonn_fit: str | None = None
    microscope_keep: float | None = None
    mle_k: int | None = None
    twonn_bootstrap: int | None = None
    gride_scales: int | None = None
    seed: int | None = None

    def need(self, estimator: str, *names: str) -> tuple[Any, ...]:
        """The values of ``names``; ValueError naming the estimator when one is not given."""
        missing = [n for n in names if getattr(self, n) is None]
        if missing:
            raise ValueError(f"the {estimator} estimator needs option(s) {missing}")
        return tuple(getattr(self, n) for n in names)


@dataclass(frozen=True)
class Variable:
    """One dataset variable: its name and the attrs it carries."""

    name: str
    long_name: str
    units: str


@dataclass(frozen=True)
class Estimator:
    """One ID estimator: what it writes, the neighbours it needs, how it computes."""

    variables: tuple[Variable, ...]  # what ``estimate`` returns, in order; the estimate first
    dims: tuple[str, ...]  # of each variable for one layer: ("repeat",) or ("repeat", "scale")
    ranks: Callable[[IDOptions, int], Iterable[int]]  # ranks needed among n distinct points
    estimate: Callable[[Neighbours, IDOptions], tuple[Any, ...]]  # one value per variable


# --- the estimators ---------------------------------------------------------------------------


def _twonn(nb: Neighbours, o: IDOptions) -> tuple[float, float]:
    discard, fit = o.need("twonn", "twonn_discard", "twonn_fit")
    mu = nb.ratios(1, 2)
    error = np.nan
    if (o.twonn_bootstrap or 0) >= 2:
        (seed,) = o.need("twonn", "seed")
        error = twonn_bootstrap_error(mu, o.twonn_bootstrap, seed, discard, fit)
    return twonn_from_ratios(mu, discard, fit), error


def _microscope(nb: Neighbours, o: IDOptions) -> tuple[float]:
    (keep,) = o.need("twonn_microscope", "microscope_keep")
    return (twonn_microscope_from_ratios(nb.ratios(1, 2), keep),)


def _mle_ranks(o: IDOptions, n: int) -> range:
    (k,) = o.need("mle", "mle_k")
    if k < 2:
        raise ValueError(f"the MLE needs k ≥ 2 neighbours, got mle_k={k}")
    return range(1, k + 1)


def _mle(nb: Neighbours, o: IDOptions) -> tuple[float]:
    return (mle_from_distances(nb.at(*_mle_ranks(o, nb.n_points))),)


def _gride_ranks(o: IDOptions, n: int) -> tuple[int, ...]:
    (scales,) = o.need("gride", "gride_scales")
    return gride_ranks(n, scales)


def _gride(nb: Neighbours, o: IDOptions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    (scales,) = o.need("gride", "gride_scales")
    return gride_of(nb, scales)


def _no_ranks(o: IDOptions, n: int) -> tuple[int, ...]:
    return ()


# Every ID estimator, in the order of the dataset variables and the table columns. An entry is
# all it takes to add one (see README, "Adding an intrinsic-dimension estimator").
REGISTRY: dict[str, Estimator] = {
    "twonn": Estimator(
        variables=(
            Variable("twonn", "TwoNN intrinsic dimension", "dimensions"),
            Variable(
                "twonn_error", "bootstrap standard error of TwoNN (resampled ratios)", "dimensions"
            ),
        ),
        dims=("repeat",),
        ranks=lambda o, n: (1, 2),
        estimate=_twonn,
    ),
    "twonn_microscope": Estimator(
        variables=(
            Variable(
                "twonn_microscope",
                "TwoNN intrinsic dimension, LLM-Microscope variant",
                "dimensions",
            ),
        ),
        dims=("repeat",),
        ranks=lambda o, n: (1, 2),
        estimate=_microscope,
    ),
    "mle": Estimator(
        variables=(
            Variable("mle", "Levina–Bickel MLE intrinsic dimension (harmonic mean)", "dimensions"),
        ),
        dims=("repeat",),
        ranks=_mle_ranks,
        estimate=_mle,
    ),
    "n_duplicates": Estimator(
        variables=(
            Variable(
                "n_duplicates", "duplicate points removed before the neighbour search", "points"
            ),
        ),
        dims=("repeat",),
        ranks=_no_ranks,
        estimate=lambda nb, o: (nb.n_duplicates,),
    ),
    "gride": Estimator(
        variables=(
            Variable(
                "gride", "GRIDE intrinsic dimension at neighbour ranks n1, n2 = 2·n1", "dimensions"
            ),
            Variable("gride_error", "GRIDE statistical error 1/√I(d̂)", "dimensions"),
            Variable("gride_radius", "mean distance of the n1-th and n2-th neighbours", "1"),
        ),
        dims=("repeat", "scale"),
        ranks=_gride_ranks,
        estimate=_gride,
    ),
}

# What the geometry job reports per layer from the estimates: GRIDE at its reported scale
# (metrics.geometry.gride_scale) next to TwoNN, and the layers where the two disagree.
REPORTED = (
    Variable("gride_at_scale", "GRIDE at the reported scale gride_scale", "dimensions"),
    Variable("gride_at_scale_error", "GRIDE error at the reported scale", "dimensions"),
    Variable(
        "twonn_gride_disagree",
        "TwoNN and GRIDE at gride_scale differ by more than id_disagreement errors",
        "1",
    ),
)


def variables(
    registry: Mapping[str, Estimator] = REGISTRY,
) -> dict[str, tuple[Variable, tuple[str, ...]]]:
    """Every estimator's variables by name, in registry order, each with its dims."""
    return {v.name: (v, e.dims) for e in registry.values() for v in e.variables}


def spread_variable(v: Variable) -> Variable:
    """``<name>_std``: the spread (:func:`repeat_spread`) of a variable over its repeats, in the
    variable's units."""
    return Variable(
        f"{v.name}_std",
        f"spread over seeded subsamples (standard deviation, ddof = 1) of {v.long_name}",
        v.units,
    )


def check_gride_scale(
    scale: int, scales: int, section: str, error: type[Exception] = ValueError
) -> None:
    """Refuse a reported GRIDE scale ``<section>.gride_scale`` that is not among the scales
    n1 = 1, 2, 4, …, 2^(scales − 1) of ``<section>.gride_scales`` (nothing to check when
    ``scales`` is 0: no GRIDE); raises ``error`` naming both keys."""
    if not scales:
        return
    n1 = gride_scales(scales)[0].tolist()
    if scale not in n1:
        raise error(
            f"config key {section}.gride_scale {scale} is not among the GRIDE scales n1 = {n1} "
            f"({section}.gride_scales = {scales}); choose one of them"
        )


# --- one search per sample --------------------------------------------------------------------


def estimate_sample(
    x: np.ndarray,
    options: IDOptions,
    which: Sequence[str] | None = None,
    backend: str = "auto",
    registry: Mapping[str, Estimator] = REGISTRY,
) -> dict[str, Any]:
    """The estimators ``which`` (all of ``registry`` by default) of the rows of x, from one
    exact neighbour search of its distinct rows up to the largest rank any of them needs:
    {variable: value}, an array over the scales for a per-scale variable."""
    names = list(registry) if which is None else list(which)
    unknown = [n for n in names if n not in registry]
    if unknown or not names:
        raise ValueError(f"unknown ID estimator(s) {unknown}; choose from {list(registry)}")
    chosen = [registry[n] for n in names]
    nb = neighbours(x, lambda n: {r for e in chosen for r in e.ranks(options, n)}, backend)
    out: dict[str, Any] = {}
    for e in chosen:
        values = e.estimate(nb, options)
        out.update(zip((v.name for v in e.variables), values, strict=True))
    return out


# --- spread over repeats ----------------------------------------------------------------------


def repeat_spread(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """The spread of estimates over seeded repeats: their sample standard deviation (ddof = 1)
    along ``axis``; NaN where there is one repeat."""
    v = np.asarray(values, dtype=np.float64)
    if v.shape[axis] < 2:
        return np.full(np.delete(v.shape, axis if axis >= 0 else v.ndim + axis), np.nan)
    return v.std(axis=axis, ddof=1)
