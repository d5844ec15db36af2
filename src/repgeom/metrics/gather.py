"""Gathering per-checkpoint datasets of one model into one dataset over steps and corpora."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from repgeom.metrics.conventions import convention_coords
from repgeom.steps import Checkpoint, as_checkpoints, step_coords


def gather(
    datasets: dict[tuple[str, str], xr.Dataset],
    steps: Sequence[str | Checkpoint],
    corpora: Sequence[str],
) -> xr.Dataset:
    """Stack datasets keyed by (step label, corpus) on new dims ``step`` (in the order given,
    with its :func:`repgeom.steps.step_coords`) and ``corpus``."""
    checkpoints = as_checkpoints(steps)
    steps = [c.label for c in checkpoints]
    missing = [(s, c) for s in steps for c in corpora if (s, c) not in datasets]
    if missing:
        raise KeyError(f"no dataset for (step, corpus) {missing}")
    check_same_conventions({k: datasets[k] for k in ((s, c) for s in steps for c in corpora)})
    per_step = [
        xr.concat([datasets[(s, c)] for c in corpora], dim="corpus", combine_attrs="drop_conflicts")
        for s in steps
    ]
    out = xr.concat(per_step, dim="step", combine_attrs="drop_conflicts")
    return out.assign_coords({**step_coords(checkpoints), "corpus": list(corpora)})


def check_same_conventions(datasets: Mapping[tuple[str, str], xr.Dataset]) -> None:
    """ValueError naming the (step, corpus) keys of each convention when the datasets were
    computed under different ``metrics.geometry.conventions`` (never mixed in one dataset)."""
    seen: dict[tuple[tuple[str, str], ...], list[tuple[str, str]]] = {}
    for key, ds in datasets.items():
        seen.setdefault(tuple(sorted(convention_coords(ds).items())), []).append(key)
    if len(seen) > 1:
        listed = "; ".join(f"{dict(c) or 'none recorded'}: {keys}" for c, keys in seen.items())
        raise ValueError(
            f"the datasets to gather were computed under different conventions ({listed}); "
            "rerun their geometry jobs under one metrics.geometry.conventions (snakemake "
            "--forcerun geometry), or gather each convention apart"
        )


def with_model(ds: xr.Dataset, model: str) -> xr.Dataset:
    """The dataset with the model's name as a scalar coordinate, so that the datasets of
    several models concatenate with ``xr.concat(..., dim="model")`` as they are."""
    out = ds.assign_coords(model=model)
    out["model"].attrs = {"long_name": "model (name in the config)", "units": "1"}
    return out


def with_integrity(ds: xr.Dataset, integrity: xr.Dataset) -> xr.Dataset:
    """The dataset with each checkpoint's weight ``fingerprint`` and ``duplicate_of`` (the
    earliest checkpoint with identical weights, '' where none) as coordinates on ``step``, from
    the model's integrity dataset: figures draw kept duplicates apart, by these."""
    by_label = {str(s): i for i, s in enumerate(integrity["step"].values)}
    missing = [str(s) for s in ds["step"].values if str(s) not in by_label]
    if missing:
        raise KeyError(f"checkpoints {missing} are not in the integrity dataset")
    rows = [by_label[str(s)] for s in ds["step"].values]
    coords = {}
    for name in ("fingerprint", "duplicate_of"):
        values = np.asarray(integrity[name].values, dtype=str)[rows]
        coords[name] = ("step", values.astype(object), dict(integrity[name].attrs))
    return ds.assign_coords(coords)
