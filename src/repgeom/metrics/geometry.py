"""All geometry metrics of one activation store, layer by layer, with and without position 0."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from repgeom.activations.source import LayerSource, final_norm_view
from repgeom.metrics.anisotropy import anisotropy_from_eigvals
from repgeom.metrics.conventions import Conventions
from repgeom.metrics.estimators import (
    REGISTRY,
    REPORTED,
    IDOptions,
    Variable,
    check_gride_scale,
    estimate_sample,
    variables,
)
from repgeom.metrics.family import (
    TRACING_ALPHA_RANKS,
    FamilyAccumulator,
    alpha_req,
    anisotropy_power,
    effective_rank,
    explained_variance,
    mean_cosine_from_sum,
    rankme,
)
from repgeom.metrics.gride import gride_scales
from repgeom.metrics.intrinsic import twonn_microscope_llm
from repgeom.metrics.layerwise import layers_to_use, select_rows
from repgeom.metrics.linearity import linearity
from repgeom.metrics.neighbors import TooFewPoints
from repgeom.metrics.origins import LayerOrigins, Origins, layer_origins, origins_datasets
from repgeom.options import build
from repgeom.sampling import seeded_subsample

POSITIONS = {"all": False, "no_first": True}

FAMILY = {
    "anisotropy": ("anisotropy σ₁²/‖X_c‖_F² (exact, float64)", "1"),
    "explained_variance": ("share of centred variance per principal direction", "1"),
    "effective_rank": ("effective rank exp(H(λ/Σλ)) (Roy & Vetterli)", "1"),
    "rankme": ("RankMe exp(H(σ/Σσ)), σ = √λ (Garrido et al. 2023)", "1"),
    "alpha_req": ("α-ReQ: exponent α of λ_i ∝ i^−α over ranks alpha_req_first…last", "1"),
    "anisotropy_power": ("anisotropy by power iteration", "1"),
    "power_iterations": ("power iterations used", "1"),
    "power_residual": ("relative residual ‖Sv−λv‖/λ of the power iteration", "1"),
    "power_converged": ("power iteration reached its tolerance", "1"),
    "mean_cosine": ("mean pairwise cosine similarity of uncentred vectors", "1"),
}
# long_name and units of every variable of the datasets (the ID ones from the estimator registry)
ATTRS = {
    **FAMILY,
    "n_tokens": ("tokens used", "tokens"),
    "id_sample_used": ("tokens in each intrinsic-dimension subsample", "tokens"),
    **{name: (v.long_name, v.units) for name, (v, _) in variables().items()},
    **{v.name: (v.long_name, v.units) for v in REPORTED},
    "linearity": ("linearity of the map from the previous layer", "1"),
}


@dataclass(frozen=True)
class GeometryOptions:
    """The config's ``metrics.geometry`` section (:func:`repgeom.options.build`; every default
    lives in the schema)."""

    positions: tuple[str, ...]
    layers: tuple[int, ...] | None
    token_budget: int | None
    top_k: int
    id_sample: int
    id_repeats: int
    twonn_discard: float
    twonn_fit: str
    microscope_keep: float
    mle_k: int
    twonn_bootstrap: int
    gride_scales: int
    gride_scale: int
    id_disagreement: float
    alpha_req_first: int
    alpha_req_last: int | None
    power_tol: float
    power_max_iter: int
    seed: int
    conventions: Conventions

    def __post_init__(self) -> None:
        if not isinstance(self.conventions, Conventions):
            convention = build(Conventions, self.conventions, "metrics.geometry.conventions")
            object.__setattr__(self, "conventions", convention)
        bad = [p for p in self.positions if p not in POSITIONS]
        if bad:
            raise ValueError(f"positions {bad} unknown; choose from {sorted(POSITIONS)}")
        check_gride_scale(self.gride_scale, self.gride_scales, "metrics.geometry")

    @property
    def id_options(self) -> IDOptions:
        """The estimators' parameters."""
        names = {f.name for f in dataclasses.fields(IDOptions)}
        return IDOptions(**{k: v for k, v in dataclasses.asdict(self).items() if k in names})

    def attrs(self) -> dict[str, Any]:
        """The options as dataset attrs (all but ``layers`` and the conventions, which are
        coordinates; sequences as lists)."""
        return {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(self).items()
            if k not in ("layers", "conventions")
        }


_REPORTED = {v.name: v for v in REPORTED}


def _var(dims: tuple[str, ...], values: Any, name: str | Variable) -> tuple:
    """A (dims, values, attrs) triple; ``name`` a key of ATTRS, or the variable itself."""
    long_name, units = (name.long_name, name.units) if isinstance(name, Variable) else ATTRS[name]
    return (dims, np.asarray(values), {"long_name": long_name, "units": units})


def _family_of_layer(acc: FamilyAccumulator, o: GeometryOptions) -> dict[str, Any]:
    """The anisotropy family of one layer from its streamed moments, by variable of FAMILY."""
    w = acc.moments.eigvalsh()
    power = anisotropy_power(acc.moments.scatter(), o.power_tol, o.power_max_iter, o.seed)
    span = min(len(w), acc.moments.n - 1)  # ranks the centred tokens can fill
    c = o.conventions
    if c.alpha_req == "tracing":
        first, last = TRACING_ALPHA_RANKS[0], min(TRACING_ALPHA_RANKS[1], span)
    else:
        first = o.alpha_req_first
        last = span if o.alpha_req_last is None else min(o.alpha_req_last, span)
    return {
        "anisotropy": anisotropy_from_eigvals(w),
        "explained_variance": explained_variance(w, o.top_k),
        "effective_rank": effective_rank(w),
        "rankme": rankme(w, c.rankme),
        "alpha_req": alpha_req(w, first, last, weighted=c.alpha_req == "tracing"),
        "anisotropy_power": power.value,
        "power_iterations": power.iterations,
        "power_residual": power.residual,
        "power_converged": int(power.converged),
        "mean_cosine": mean_cosine_from_sum(acc.unit_sum, acc.moments.n),
    }


def _anisotropy_dataset(
    fam: dict[str, list], layers: list[int], n: int, o: GeometryOptions
) -> xr.Dataset:
    """The anisotropy family by layer (and principal direction), with the tokens used."""
    anis = xr.Dataset(
        {
            k: _var(("layer", "component") if k == "explained_variance" else ("layer",), v, k)
            for k, v in fam.items()
        },
        coords={"layer": layers, "component": np.arange(1, o.top_k + 1)},
    )
    anis["n_tokens"] = _var((), n, "n_tokens")
    return anis


def _id_dataset(
    ids: dict[str, list], layers: list[int], size: int, o: GeometryOptions
) -> xr.Dataset:
    """Every registered ID estimate by layer, repeat (and GRIDE scale), with the subsample
    size and, with GRIDE, its estimate at the reported scale and the TwoNN–GRIDE flag."""
    id_vars = variables(REGISTRY)
    n1, n2 = gride_scales(o.gride_scales) if o.gride_scales else (np.zeros(0, int),) * 2
    idd = xr.Dataset(
        {k: _var(("layer", *dims), ids[k], v) for k, (v, dims) in id_vars.items()},
        coords={
            "layer": layers,
            "repeat": np.arange(o.id_repeats),
            "scale": n1,
            "n2": ("scale", n2),
        },
    )
    idd["scale"].attrs = {"long_name": "neighbour rank n1 of GRIDE (n2 = 2·n1)", "units": "1"}
    idd["n_tokens"] = _var((), size, "n_tokens")
    idd["id_sample_used"] = _var((), size, "id_sample_used")
    if o.gride_scales:
        _add_gride_at_scale(idd, o)
    return idd


def _add_gride_at_scale(idd: xr.Dataset, o: GeometryOptions) -> None:
    """Add GRIDE at ``o.gride_scale`` (and its error) and the flag of layers where TwoNN and
    it disagree by more than ``o.id_disagreement`` combined errors, in place."""
    at = idd["gride"].sel(scale=o.gride_scale)
    err = idd["gride_error"].sel(scale=o.gride_scale)
    rep = _REPORTED
    idd["gride_at_scale"] = _var(("layer", "repeat"), at.values, rep["gride_at_scale"])
    idd["gride_at_scale_error"] = _var(("layer", "repeat"), err.values, rep["gride_at_scale_error"])
    gap = np.abs(idd["twonn"].mean("repeat") - at.mean("repeat"))
    combined = np.sqrt(idd["twonn_error"].mean("repeat") ** 2 + err.mean("repeat") ** 2)
    flag = (gap > o.id_disagreement * combined).astype(np.int8)
    idd["twonn_gride_disagree"] = _var(("layer",), flag.values, rep["twonn_gride_disagree"])


def _family_and_origins(
    source: LayerSource,
    layer: int,
    rows: np.ndarray | None,
    every: np.ndarray | None,
    o: GeometryOptions,
    origins: Origins | None,
) -> tuple[FamilyAccumulator, LayerOrigins | None]:
    """The anisotropy family of one layer over ``rows`` and, with ``origins``, where it comes
    from over ``every`` token of the token set: on the same reads when those are the rows."""
    if origins is None:
        return FamilyAccumulator.of(source.iter_blocks(layer, rows), source.hidden_size), None
    if o.token_budget is None:  # rows are every token of the token set: one pass less
        acc = FamilyAccumulator(source.hidden_size)
        return acc, layer_origins(source, layer, every, origins, family=acc)
    acc = FamilyAccumulator.of(source.iter_blocks(layer, rows), source.hidden_size)
    return acc, layer_origins(source, layer, every, origins)


def _variant(
    source: LayerSource,
    layers: list[int],
    drop_first: bool,
    o: GeometryOptions,
    origins: Origins | None = None,
) -> tuple[dict[str, xr.Dataset], list[LayerOrigins]]:
    """The three datasets of one ``positions`` variant (with or without position 0), and
    where its anisotropy comes from, by layer (with ``origins``)."""
    pooling = o.conventions.pooling
    rows = select_rows(source, drop_first, o.token_budget, o.seed, pooling)
    every = (
        rows if o.token_budget is None else select_rows(source, drop_first, None, o.seed, pooling)
    )
    pool = source.n_tokens if rows is None else rows
    store = getattr(source, "path", "the activation store")
    where = f"without position 0 of {store}" if drop_first else f"of {store}"
    check_id_sample(
        o.id_sample, o.id_repeats, source.n_tokens if rows is None else len(rows), where
    )
    samples = [seeded_subsample(pool, o.id_sample, o.seed, r) for r in range(o.id_repeats)]
    size = len(samples[0])
    fam: dict[str, list] = {k: [] for k in FAMILY}
    ids: dict[str, list] = {k: [] for k in variables(REGISTRY)}
    lin: list[float] = []
    found: list[LayerOrigins] = []
    previous = None
    for layer in layers:
        acc, here = _family_and_origins(source, layer, rows, every, o, origins)
        if here is not None:
            found.append(here)
        for key, value in _family_of_layer(acc, o).items():
            fam[key].append(value)
        per_repeat = []
        for r, sample in enumerate(samples):
            x = source.read(layer, sample)
            per_repeat.append(id_of_sample(x, o))
            if r == 0:
                lin.append(np.nan if previous is None else linearity(previous, x))
                previous = x
        for key in ids:
            ids[key].append([e[key] for e in per_repeat])
    n = source.n_tokens if rows is None else len(rows)
    anis = _anisotropy_dataset(fam, layers, n, o)
    idd = _id_dataset(ids, layers, size, o)
    lind = xr.Dataset({"linearity": _var(("layer",), lin, "linearity")}, coords={"layer": layers})
    lind["n_tokens"] = _var((), size, "n_tokens")
    return {"anisotropy": anis, "intrinsic_dimension": idd, "linearity": lind}, found


def check_id_sample(
    id_sample: int,
    id_repeats: int,
    rows: int,
    where: str,
    key: str = "metrics.geometry.id_sample",
    unit: str = "tokens",
) -> None:
    """Refuse repeats that would all be the same full set of rows: ``id_repeats`` > 1 with
    ``id_sample`` ≥ the ``rows`` available (their spread would read 0). The message names the
    config ``key`` and the ``rows`` ``unit`` ``where`` (e.g. "of <store>", "of 'fra_Latn'")."""
    if id_repeats > 1 and id_sample >= rows:
        one = unit.removesuffix("s")
        raise ValueError(
            f"config key '{key}' ({id_sample}) is not below the {rows} {unit} {where}, so all "
            f"{id_repeats} intrinsic-dimension repeats would be the same full set of {unit} (a "
            f"spread of 0); set {key.rsplit('.', 1)[-1]} below {rows}, or id_repeats: 1 to use "
            f"every {one} once"
        )


def id_of_sample(x: np.ndarray, options: GeometryOptions) -> dict[str, Any]:
    """Every registered ID estimate of one subsample (:func:`estimate_sample`: one exact
    neighbour search on its distinct rows), by variable; GRIDE is NaN at the scales whose n2
    exceeds the distinct points − 1, and where its likelihood has no root."""
    try:
        out = estimate_sample(x, options.id_options, registry=REGISTRY)
    except TooFewPoints as e:
        advice = "raise metrics.geometry.id_sample or lower mle_k"
        raise TooFewPoints(e.n_points, e.n_duplicates, e.needed, advice) from None
    if options.conventions.twonn_microscope == "llm_microscope":  # every row, duplicates too
        out["twonn_microscope"] = twonn_microscope_llm(x, options.microscope_keep)
    return out


def geometry_datasets(
    source: LayerSource, options: GeometryOptions, origins: Origins | None = None
) -> dict[str, xr.Dataset]:
    """Datasets 'anisotropy' (the family), 'intrinsic_dimension' and 'linearity' of a store,
    and with ``origins`` 'dimensions' and 'frequency' (:mod:`repgeom.metrics.origins`).

    Each has dims (positions, layer, …): ``positions`` 'all' uses every token, 'no_first' drops
    position 0 (BOS/first tokens carry massive activations). The anisotropy family comes from
    one streaming float64 pass per layer over the selected tokens; ID uses ``id_repeats``
    seeded subsamples of ``id_sample`` tokens (the same tokens at every layer), each estimator
    of the registry (:data:`repgeom.metrics.estimators.REGISTRY`) from one neighbour search per
    subsample; linearity of layer l is that of the map from layer l−1 on the first subsample
    (NaN at the first layer). Rogue dimensions, massive activations and the frequency buckets
    use every token of each token set (never ``token_budget``), on the reads of the anisotropy
    pass where it uses them too. The options go into each dataset's attrs, the conventions
    (``options.conventions``: RankMe, α-ReQ, LLM-Microscope's TwoNN, pooling, the last layer
    before or after the final norm) into its coordinates.
    """
    source = final_norm_view(source, options.conventions.final_norm)
    layers = layers_to_use(source, None if options.layers is None else list(options.layers))
    if origins is not None:  # the buckets' RankMe follows the geometry job's convention
        origins = dataclasses.replace(origins, rankme=options.conventions.rankme)
    variants = {
        p: _variant(source, layers, POSITIONS[p], options, origins) for p in options.positions
    }
    attrs = options.attrs()
    out = {}
    first = next(iter(variants.values()))[0]
    for name in first:
        ds = xr.concat([v[name] for v, _ in variants.values()], dim="positions", data_vars="all")
        ds = ds.assign_coords(positions=list(options.positions))
        ds.attrs = dict(attrs)
        out[name] = ds
    if origins is not None:
        out |= origins_datasets({p: found for p, (_, found) in variants.items()}, layers, origins)
    return {k: options.conventions.record(ds) for k, ds in out.items()}
