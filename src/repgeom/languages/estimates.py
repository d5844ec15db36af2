"""The intrinsic-dimension estimators the languages study names (``languages.id_estimator``):
estimators of the registry (:data:`repgeom.metrics.estimators.REGISTRY`), run the way the
geometry job runs them — ``repeats`` seeded subsamples
(:func:`repgeom.sampling.seeded_subsample`), one neighbour search each
(:func:`repgeom.metrics.estimators.estimate_sample`) — and named, with their long_name and
units, by the registry's :class:`~repgeom.metrics.estimators.Variable`.

An ID function is ``id_fn(x) -> float | array | IDValues`` of one (n, d) sample. One that
returns an array (one value per repeat) is reduced to its mean, and the spread over repeats is
kept next to it (:func:`repgeom.metrics.estimators.repeat_spread`; NaN for one value). An
:class:`IDValues` carries GRIDE over scales too, from the same neighbour search as the ID
(:class:`IDFunction`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from repgeom.metrics.estimators import (
    REGISTRY,
    IDOptions,
    Variable,
    estimate_sample,
    repeat_spread,
    variables,
)
from repgeom.metrics.geometry import check_id_sample
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

# The study's estimator parameters (no config key): TwoNN discarding the largest 10 % of the
# ratios, least squares through the origin — scikit-dimension's TwoNN pinned, the configuration
# of the per-language LLM-Microscope study (on mean-pooled vectors); LLM-Microscope's own TwoNN
# on the smallest 20 % of the ratios (both the defaults of metrics.geometry).
ID_OPTIONS = IDOptions(twonn_discard=0.1, twonn_fit="lsq", microscope_keep=0.2)

# The names ``languages.id_estimator`` takes: the registry's estimators whose parameters
# ID_OPTIONS gives, by their registry names.
ID_ESTIMATORS: tuple[str, ...] = tuple(
    name for name in REGISTRY if name in ("twonn", "twonn_microscope")
)

# Other names a config may give for one of ID_ESTIMATORS (the same estimator, same values).
ID_ALIASES: dict[str, str] = {"skdim_twonn": "twonn"}

# The ID variable of a dataset made with an ID function that is no registry estimator.
ID_VARIABLE = Variable("id", "intrinsic dimension", "dimensions")


def id_estimator(name: str) -> str:
    """The registry name of the estimator ``languages.id_estimator`` names (an alias resolved);
    ValueError naming the choices for any other."""
    if name in ID_ESTIMATORS:
        return name
    if name in ID_ALIASES:
        return ID_ALIASES[name]
    raise ValueError(
        f"unknown ID estimator {name!r}; choose one of {list(ID_ESTIMATORS)} "
        f"(aliases: {', '.join(f'{a} = {t}' for a, t in ID_ALIASES.items())})"
    )


def id_variable(id_fn: IdFn) -> Variable:
    """The registry variable of an :class:`IDFunction`'s estimator (its long_name and units);
    :data:`ID_VARIABLE` for any other function."""
    return id_fn.variable if isinstance(id_fn, IDFunction) else ID_VARIABLE


@dataclass(frozen=True)
class IDFunction:
    """``fn(x)`` → :class:`IDValues`: the registry ``estimator`` (a name of
    :data:`ID_ESTIMATORS`) with :data:`ID_OPTIONS` on ``repeats`` seeded subsamples of ``sample``
    rows of x (all rows when x has at most ``sample``), and GRIDE at n₁ = 1 … 2^(gride_scales−1)
    (none when 0) on the first of them — NaN at the scales whose n₂ exceeds its distinct
    points − 1 and where the likelihood has no root — with one neighbour search per subsample
    (:func:`repgeom.metrics.estimators.estimate_sample`).

    ``estimator`` may be an alias (:data:`ID_ALIASES`); it is kept as the registry name. The
    subsamples depend only on ``seed``, the repeat and the number of rows, so a store's rows
    are subsampled the same way at every layer. With at most ``sample`` rows every repeat is
    all of them (the same value each time): the datasets refuse that where they report the
    spread over repeats, naming the language and its rows (:meth:`check`).
    """

    estimator: str
    sample: int
    repeats: int = 1
    seed: int = 0
    gride_scales: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "estimator", id_estimator(self.estimator))
        if self.sample < 3:
            raise ValueError(f"id_sample must be ≥ 3, got {self.sample}")
        if self.repeats < 1:
            raise ValueError(f"id_repeats must be ≥ 1, got {self.repeats}")

    @property
    def variable(self) -> Variable:
        """The estimate's variable in the registry (name, long_name, units)."""
        return REGISTRY[self.estimator].variables[0]

    def check(self, rows: int, where: str, unit: str = "rows") -> None:
        """Refuse ``repeats`` > 1 with ``sample`` ≥ the ``rows`` available
        (:func:`repgeom.metrics.geometry.check_id_sample`, naming ``languages.id_sample`` and
        the ``rows`` ``unit`` ``where``)."""
        check_id_sample(self.sample, self.repeats, rows, where, "languages.id_sample", unit)

    def __call__(self, x: np.ndarray) -> IDValues:
        x = np.asarray(x)
        options = dataclasses.replace(ID_OPTIONS, gride_scales=self.gride_scales)
        value = self.variable.name
        values: list[float] = []
        gride = (np.zeros(0), np.zeros(0))
        for r in range(self.repeats):
            rows = seeded_subsample(x.shape[0], self.sample, self.seed, r)
            which = (self.estimator, "gride") if r == 0 and self.gride_scales else (self.estimator,)
            est = estimate_sample(x[rows], options, which)
            values.append(est[value])
            if "gride" in which:
                gride = (est["gride"], est["gride_error"])
        return IDValues(np.array(values), *gride)


def gride_variables() -> tuple[Variable, Variable]:
    """The registry's ``gride`` and ``gride_error`` variables."""
    table = variables(REGISTRY)
    return table["gride"][0], table["gride_error"][0]


def check_rows(id_fn: IdFn, rows: int, where: str, unit: str) -> None:
    """:meth:`IDFunction.check` of an :class:`IDFunction`; nothing for any other function."""
    if isinstance(id_fn, IDFunction):
        id_fn.check(rows, where, unit)


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
