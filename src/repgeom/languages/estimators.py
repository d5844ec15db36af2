"""Intrinsic-dimension estimators of the languages study, by name: the one place they are wired.

``languages.id_estimator`` names one entry of :data:`ID_ESTIMATORS`; :func:`id_function` turns
it into the ``id_fn(x) -> array`` that :mod:`repgeom.languages.study` takes: the estimator of
:mod:`repgeom.metrics.intrinsic` on ``repeats`` seeded subsamples of at most ``sample`` rows
(:func:`repgeom.metrics.intrinsic.intrinsic_dimension`; exact duplicate rows are removed
before each estimate, so repeated BOS or embedding vectors never give an infinite ratio).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from repgeom.metrics.intrinsic import intrinsic_dimension

# name -> (estimator of repgeom.metrics.intrinsic, its options)
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
