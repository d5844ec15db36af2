"""All geometry metrics of one activation store, layer by layer, with and without position 0."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from repgeom.activations.source import LayerSource
from repgeom.metrics.family import (
    FamilyAccumulator,
    anisotropy_power,
    effective_rank,
    explained_variance,
    mean_cosine_from_sum,
)
from repgeom.metrics.intrinsic import id_estimates
from repgeom.metrics.layerwise import layers_to_use, seeded_subsample, select_rows
from repgeom.metrics.linearity import linearity
from repgeom.workflow.config import schema_defaults

POSITIONS = {"all": False, "no_first": True}

ATTRS = {
    "anisotropy": ("anisotropy σ₁²/‖X_c‖_F² (exact, float64)", "1"),
    "explained_variance": ("share of centred variance per principal direction", "1"),
    "effective_rank": ("effective rank exp(H(λ/Σλ)) (Roy & Vetterli)", "1"),
    "anisotropy_power": ("anisotropy by power iteration", "1"),
    "power_iterations": ("power iterations used", "1"),
    "power_residual": ("relative residual ‖Sv−λv‖/λ of the power iteration", "1"),
    "power_converged": ("power iteration reached its tolerance", "1"),
    "mean_cosine": ("mean pairwise cosine similarity of uncentred vectors", "1"),
    "n_tokens": ("tokens used", "tokens"),
    "twonn": ("TwoNN intrinsic dimension", "dimensions"),
    "twonn_microscope": ("TwoNN intrinsic dimension, LLM-Microscope variant", "dimensions"),
    "mle": ("Levina–Bickel MLE intrinsic dimension (harmonic mean)", "dimensions"),
    "n_duplicates": ("duplicate points removed before the neighbour search", "points"),
    "linearity": ("linearity of the map from the previous layer", "1"),
}


def _var(dims: tuple[str, ...], values: Any, name: str) -> tuple:
    long_name, units = ATTRS[name]
    return (dims, np.asarray(values), {"long_name": long_name, "units": units})


def _variant(
    source: LayerSource, layers: list[int], drop_first: bool, o: dict
) -> dict[str, xr.Dataset]:
    rows = select_rows(source, drop_first, o["token_budget"], o["seed"])
    pool = source.n_tokens if rows is None else rows
    samples = [seeded_subsample(pool, o["id_sample"], o["seed"], r) for r in range(o["id_repeats"])]
    size = len(samples[0])
    fam: dict[str, list] = {
        k: []
        for k in ATTRS
        if k
        in (
            "anisotropy",
            "explained_variance",
            "effective_rank",
            "anisotropy_power",
            "power_iterations",
            "power_residual",
            "power_converged",
            "mean_cosine",
        )
    }
    ids: dict[str, list] = {k: [] for k in ("twonn", "twonn_microscope", "mle", "n_duplicates")}
    lin: list[float] = []
    previous = None
    for layer in layers:
        acc = FamilyAccumulator.of(source.iter_blocks(layer, rows), source.hidden_size)
        w = acc.moments.eigvalsh()
        power = anisotropy_power(
            acc.moments.scatter(), o["power_tol"], o["power_max_iter"], o["seed"]
        )
        fam["anisotropy"].append(w[0] / w.sum())
        fam["explained_variance"].append(explained_variance(w, o["top_k"]))
        fam["effective_rank"].append(effective_rank(w))
        fam["anisotropy_power"].append(power.value)
        fam["power_iterations"].append(power.iterations)
        fam["power_residual"].append(power.residual)
        fam["power_converged"].append(int(power.converged))
        fam["mean_cosine"].append(mean_cosine_from_sum(acc.unit_sum, acc.moments.n))
        per_repeat = []
        for r, sample in enumerate(samples):
            x = source.read(layer, sample)
            est = id_estimates(
                x,
                discard=o["twonn_discard"],
                fit=o["twonn_fit"],
                keep=o["microscope_keep"],
                k=o["mle_k"],
            )
            per_repeat.append(
                {**{k: v.value for k, v in est.items()}, "n_duplicates": est["mle"].n_duplicates}
            )
            if r == 0:
                lin.append(np.nan if previous is None else linearity(previous, x))
                previous = x
        for key in ids:
            ids[key].append([e[key] for e in per_repeat])
    n = source.n_tokens if rows is None else len(rows)
    coords = {"layer": layers}
    anis = xr.Dataset(
        {
            k: _var(("layer", "component") if k == "explained_variance" else ("layer",), v, k)
            for k, v in fam.items()
        },
        coords={**coords, "component": np.arange(1, o["top_k"] + 1)},
    )
    anis["n_tokens"] = _var((), n, "n_tokens")
    idd = xr.Dataset(
        {k: _var(("layer", "repeat"), v, k) for k, v in ids.items()},
        coords={**coords, "repeat": np.arange(o["id_repeats"])},
    )
    idd["n_tokens"] = _var((), size, "n_tokens")
    lind = xr.Dataset({"linearity": _var(("layer",), lin, "linearity")}, coords=coords)
    lind["n_tokens"] = _var((), size, "n_tokens")
    return {"anisotropy": anis, "intrinsic_dimension": idd, "linearity": lind}


def geometry_datasets(source: LayerSource, options: dict[str, Any]) -> dict[str, xr.Dataset]:
    """Datasets 'anisotropy' (the family), 'intrinsic_dimension' and 'linearity' of a store;
    ``options`` as in the config's ``metrics.geometry`` (the schema's defaults for the others).

    Each has dims (positions, layer, …): ``positions`` 'all' uses every token, 'no_first' drops
    position 0 (BOS/first tokens carry massive activations). The anisotropy family comes from
    one streaming float64 pass per layer over the selected tokens; ID uses ``id_repeats``
    seeded subsamples of ``id_sample`` tokens (the same tokens at every layer); linearity of
    layer l is that of the map from layer l−1 on the first subsample (NaN at the first layer).
    """
    defaults = schema_defaults("metrics.geometry")
    o = {**defaults, **options}
    unknown = set(o) - set(defaults)
    if unknown:
        raise ValueError(f"unknown geometry option(s) {sorted(unknown)}; known: {sorted(defaults)}")
    bad = [p for p in o["positions"] if p not in POSITIONS]
    if bad:
        raise ValueError(f"positions {bad} unknown; choose from {sorted(POSITIONS)}")
    layers = layers_to_use(source, o["layers"])
    variants = [_variant(source, layers, POSITIONS[p], o) for p in o["positions"]]
    attrs = {k: o[k] for k in defaults if k not in ("layers",)}
    out = {}
    for name in variants[0]:
        ds = xr.concat([v[name] for v in variants], dim="positions", data_vars="all")
        ds = ds.assign_coords(positions=list(o["positions"]))
        ds.attrs = dict(attrs)
        out[name] = ds
    return out
