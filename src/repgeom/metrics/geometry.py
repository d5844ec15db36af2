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
from repgeom.metrics.gride import fitting_scales, gride_columns, gride_scales
from repgeom.metrics.intrinsic import (
    ESTIMATORS,
    estimates_from_distances,
    neighbour_distances,
    remove_duplicates,
    twonn_bootstrap_error,
)
from repgeom.metrics.layerwise import layers_to_use, select_rows
from repgeom.metrics.linearity import linearity
from repgeom.sampling import seeded_subsample
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
    "twonn_error": ("bootstrap standard error of TwoNN (resampled ratios)", "dimensions"),
    "gride": ("GRIDE intrinsic dimension at neighbour ranks n1, n2 = 2·n1", "dimensions"),
    "gride_error": ("GRIDE statistical error 1/√I(d̂)", "dimensions"),
    "gride_radius": ("mean distance of the n1-th and n2-th neighbours", "1"),
    "gride_at_scale": ("GRIDE at the reported scale gride_scale", "dimensions"),
    "gride_at_scale_error": ("GRIDE error at the reported scale", "dimensions"),
    "twonn_gride_disagree": (
        "TwoNN and GRIDE at gride_scale differ by more than id_disagreement errors",
        "1",
    ),
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
    ids: dict[str, list] = {k: [] for k in (*ID_VARIABLES, *SCALE_VARIABLES)}
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
            per_repeat.append(id_of_sample(x, o))
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
    n1, n2 = gride_scales(o["gride_scales"]) if o["gride_scales"] else (np.zeros(0, int),) * 2
    idd = xr.Dataset(
        {
            k: _var(
                ("layer", "repeat", "scale") if k in SCALE_VARIABLES else ("layer", "repeat"), v, k
            )
            for k, v in ids.items()
        },
        coords={**coords, "repeat": np.arange(o["id_repeats"]), "scale": n1, "n2": ("scale", n2)},
    )
    idd["scale"].attrs = {"long_name": "neighbour rank n1 of GRIDE (n2 = 2·n1)", "units": "1"}
    idd["n_tokens"] = _var((), size, "n_tokens")
    if o["gride_scales"]:
        at = idd["gride"].sel(scale=o["gride_scale"])
        err = idd["gride_error"].sel(scale=o["gride_scale"])
        idd["gride_at_scale"] = _var(("layer", "repeat"), at.values, "gride_at_scale")
        idd["gride_at_scale_error"] = _var(("layer", "repeat"), err.values, "gride_at_scale_error")
        gap = np.abs(idd["twonn"].mean("repeat") - at.mean("repeat"))
        combined = np.sqrt(idd["twonn_error"].mean("repeat") ** 2 + err.mean("repeat") ** 2)
        flag = (gap > o["id_disagreement"] * combined).astype(np.int8)
        idd["twonn_gride_disagree"] = _var(("layer",), flag.values, "twonn_gride_disagree")
    lind = xr.Dataset({"linearity": _var(("layer",), lin, "linearity")}, coords=coords)
    lind["n_tokens"] = _var((), size, "n_tokens")
    return {"anisotropy": anis, "intrinsic_dimension": idd, "linearity": lind}


ID_VARIABLES = ("twonn", "twonn_microscope", "mle", "n_duplicates", "twonn_error")
SCALE_VARIABLES = ("gride", "gride_error", "gride_radius")


def id_of_sample(x: np.ndarray, o: dict[str, Any]) -> dict[str, Any]:
    """Every ID estimate of one subsample from one exact neighbour search on its distinct rows:
    TwoNN (and its bootstrap error), LLM-Microscope's TwoNN, the MLE, and GRIDE at each scale
    (NaN where n2 exceeds the distinct points, or where the likelihood has no root)."""
    xu, n_dup = remove_duplicates(x)
    n, kk, scales = xu.shape[0], max(2, o["mle_k"]), o["gride_scales"]
    if n < kk + 1:
        raise ValueError(
            f"{n} distinct point(s) ({n_dup} duplicates removed) but {kk} neighbours are needed; "
            "raise metrics.geometry.id_sample or lower mle_k"
        )
    fit = fitting_scales(n, scales)
    ranks = sorted(set(range(1, kk + 1)) | ({2**i for i in range(fit + 1)} if fit else set()))
    dist = neighbour_distances(xu, ranks[-1], ranks=np.asarray(ranks))
    at = {r: dist[:, i] for i, r in enumerate(ranks)}  # rank -> each point's distance
    base = np.stack([at[r] for r in range(1, kk + 1)], axis=1)
    out: dict[str, Any] = estimates_from_distances(
        base, ESTIMATORS, o["twonn_discard"], o["twonn_fit"], o["microscope_keep"], o["mle_k"]
    )
    out["n_duplicates"] = n_dup
    out["twonn_error"] = np.nan
    if o["twonn_bootstrap"] >= 2:
        mu = at[2] / at[1]
        out["twonn_error"] = twonn_bootstrap_error(
            mu, o["twonn_bootstrap"], o["seed"], o["twonn_discard"], o["twonn_fit"]
        )
    powers = np.stack([at[2**s] for s in range(fit + 1)], axis=1)  # ranks 1, 2, …, 2^fit
    out["gride"], out["gride_error"], out["gride_radius"] = gride_columns(powers, scales)
    return out


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
    if o["gride_scales"] and o["gride_scale"] not in gride_scales(o["gride_scales"])[0]:
        raise ValueError(
            f"metrics.geometry.gride_scale {o['gride_scale']} is not among the GRIDE scales "
            f"n1 = {gride_scales(o['gride_scales'])[0].tolist()} (gride_scales = "
            f"{o['gride_scales']}); choose one of them"
        )
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
