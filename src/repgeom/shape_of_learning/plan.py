"""What the Shape-of-Learning study builds, from the config alone (no torch import): its figures
and its tables, the intrinsic-dimension columns read from the estimator registry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from repgeom.metrics.estimators import REGISTRY, REPORTED, Estimator
from repgeom.workflow.paths import PATHS, Paths
from repgeom.workflow.studies import CorePlan, StudyPlan

STUDY = "shape_of_learning"

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


def plan(section: Mapping[str, Any] | None, run: CorePlan, paths: Paths = PATHS) -> StudyPlan:
    """The study's plan: every figure and table over the models the core measures (its figures
    read the core metrics), none when the config does not name the study."""
    models = run.geometry_models if section is not None else []
    gride = run.config["metrics"]["geometry"]["gride_scales"] > 0
    table_columns = tables(gride)
    by_scale = "figures/shape_of_learning/intrinsic_dimension_by_scale/{m}/{c}.{ext}"
    scale_figures = [
        paths.results(by_scale.format(m=m, c=c, ext=ext))
        for m in models
        for c in run.extract_corpora
        for ext in ("png", "pdf")
        if gride
    ]
    targets = [
        *(paths.results(f"figures/{STUDY}/{f}.{ext}") for f in FIGURES for ext in ("png", "pdf")),
        *(
            paths.results(f"tables/{STUDY}/{t}.{ext}")
            for t in table_columns
            for ext in ("csv", "tex")
        ),
        *scale_figures,
    ]
    return StudyPlan(
        targets=tuple(targets) if models else (),
        params={"models": models, "figures": FIGURES, "tables": table_columns, "gride": gride},
    )
