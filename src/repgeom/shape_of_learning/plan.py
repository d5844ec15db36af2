"""What the Shape-of-Learning study builds, from the config alone (no torch import): its figures
and its tables, the intrinsic-dimension columns read from the estimator registry."""

from __future__ import annotations

from collections.abc import Mapping

from repgeom.metrics.estimators import REGISTRY, REPORTED, Estimator

# figure → (gathered metric dataset, variable drawn)
FIGURES: dict[str, tuple[str, str]] = {
    "anisotropy_by_layer": ("anisotropy", "anisotropy"),
    "intrinsic_dimension_by_layer": ("intrinsic_dimension", "twonn"),
    "intrinsic_dimension_by_step": ("intrinsic_dimension", "twonn"),
    "mle_by_layer": ("intrinsic_dimension", "mle"),
    "mean_cosine_by_layer": ("anisotropy", "mean_cosine"),
    "effective_rank_by_layer": ("anisotropy", "effective_rank"),
    "linearity_by_layer": ("linearity", "linearity"),
}


def tables(gride: bool, registry: Mapping[str, Estimator] = REGISTRY) -> dict[str, list[str]]:
    """Table (a gathered metric dataset) → its columns. The intrinsic-dimension table has every
    variable with one value per subsample of the registry's estimators, in registry order, and,
    when GRIDE runs (``metrics.geometry.gride_scales`` > 0), GRIDE at the reported scale next to
    TwoNN and the disagreement flag."""
    ids = [v.name for e in registry.values() if e.dims == ("repeat",) for v in e.variables]
    return {
        "anisotropy": ["anisotropy", "anisotropy_power", "effective_rank", "mean_cosine"],
        "intrinsic_dimension": ids + ([v.name for v in REPORTED] if gride else []),
        "linearity": ["linearity"],
    }
