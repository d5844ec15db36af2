"""Where anisotropy comes from, in the geometry job: rogue dimensions and massive activations
(:mod:`repgeom.metrics.dimensions`) and frequency-stratified geometry
(:mod:`repgeom.metrics.frequency`) of every layer, on the reads of its anisotropy pass.

Per layer and token set the two analyses take one gathered read (the frequency buckets'
subsamples) and two streaming reads of the layer, which they share
(:func:`repgeom.metrics.dimensions.run_two_passes`). Where the anisotropy family uses the same
tokens (no ``token_budget``), its pass is the first of those two reads
(:class:`FamilyPass`), and its scatter gives the frequency drift's exact principal direction
when ``direction_sample`` is None: the family, the rogue dimensions, the massive activations and
the frequency buckets cost one read of the layer more than the family alone.

The datasets (:func:`origins_datasets`) have dims (positions, layer, …): ``dimensions`` with
``hidden``, ``rogue_rank``, ``without_top``, ``massive_rank``, ``position_rank`` and
``token_rank``; ``frequency`` with ``bucket`` and ``direction``, the bucket bounds
``count_low``/``count_high`` (bucket) and the train split's size ``train_tokens`` (a scalar).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from repgeom.activations.source import LayerSource
from repgeom.metrics.dimensions import DimensionOptions, LayerDimensions, Rows, layer_dimensions
from repgeom.metrics.family import FamilyAccumulator
from repgeom.metrics.frequency import FrequencyOptions, FrequencyResult, frequency_accumulator

COORDS = {
    "hidden": ("dimension of the hidden state", "1"),
    "rogue_rank": ("rank of the dimension by contribution to the mean cosine (1 = largest)", "1"),
    "without_top": ("rogue dimensions deleted (the top k by contribution)", "1"),
    "massive_rank": ("rank of the massive activation by magnitude (1 = largest)", "1"),
    "position_rank": ("rank of the position by massive activations held", "1"),
    "token_rank": ("rank of the token id by massive activations held", "1"),
    "bucket": ("train-count bucket (0 = unseen in train, 1… = log-spaced, rarest first)", "1"),
    "direction": ("direction the tokens are projected on (mean, first principal)", "1"),
}
BUCKET_ONLY = ("count_low", "count_high")  # the same at every layer and token set


@dataclass(frozen=True, eq=False)
class Origins:
    """What the geometry job needs for both analyses: their options and the train count of
    every token id (:func:`repgeom.metrics.frequency.split_counts`)."""

    dimensions: DimensionOptions
    frequency: FrequencyOptions
    counts: np.ndarray
    rankme: str = "garrido"  # the RankMe convention of the buckets (the geometry job's)


class FamilyPass:
    """Feeds a :class:`~repgeom.metrics.family.FamilyAccumulator` the rows of pass 1 of
    :func:`~repgeom.metrics.dimensions.run_two_passes` (the ``TwoPass`` protocol)."""

    def __init__(self, family: FamilyAccumulator) -> None:
        self.family = family

    def first(self, rows: Rows) -> None:
        self.family.add(np.array(rows.x64, dtype=np.float64), rows.sq)  # centred in place

    def end_first(self) -> None:
        pass

    def second(self, rows: Rows) -> None:
        pass


@dataclass(frozen=True)
class LayerOrigins:
    """Both analyses of one layer and token set."""

    dimensions: LayerDimensions
    frequency: FrequencyResult


def layer_origins(
    source: LayerSource,
    layer: int,
    rows: np.ndarray | None,
    origins: Origins,
    family: FamilyAccumulator | None = None,
) -> LayerOrigins:
    """Both analyses of one layer over the sorted ``rows`` (None: every token); ``family`` (an
    empty accumulator), if given, is filled from pass 1 of the same reads with the same rows."""
    origins.dimensions.check_hidden_size(source.hidden_size)
    freq = frequency_accumulator(
        source,
        layer,
        origins.counts,
        origins.frequency,
        rows,
        moments=None if family is None else family.moments,
        rankme=origins.rankme,
    )
    also = [freq] if family is None else [FamilyPass(family), freq]  # the family first
    dims = layer_dimensions(source, layer, rows, origins.dimensions, also=also)
    return LayerOrigins(dims, freq.result())


def _stack(per_positions: Mapping[str, Sequence[Any]], layers: Sequence[int]) -> xr.Dataset:
    """Results of one analysis (``variables()``/``coords()``) by token set and layer, stacked
    on (positions, layer) with numpy (an xarray concat of every layer costs more than the
    analyses of a small store)."""
    found = [[f.variables() for f in fs] for fs in per_positions.values()]
    first = next(iter(per_positions.values()))[0]
    data = {
        name: (
            ("positions", "layer", *dims),
            np.stack([np.stack([v[name][1] for v in vs]) for vs in found]),
            attrs,
        )
        for name, (dims, _, attrs) in found[0][0].items()
    }
    ds = xr.Dataset(
        data, coords={**first.coords(), "positions": list(per_positions), "layer": list(layers)}
    )
    for name, (long_name, units) in COORDS.items():
        if name in ds.coords:
            ds[name].attrs = {"long_name": long_name, "units": units}
    return ds


def origins_datasets(
    found: Mapping[str, Sequence[LayerOrigins]], layers: Sequence[int], origins: Origins
) -> dict[str, xr.Dataset]:
    """Datasets 'dimensions' and 'frequency' of the analyses ``found`` per token set (the
    ``positions`` label) and layer (``layers``, in order); the options in their attrs."""
    dims = _stack({p: [f.dimensions for f in fs] for p, fs in found.items()}, layers)
    freq = _stack({p: [f.frequency for f in fs] for p, fs in found.items()}, layers)
    for name in BUCKET_ONLY:  # the same at every layer and token set
        freq[name] = freq[name].isel(positions=0, layer=0, drop=True)
    freq["train_tokens"] = (
        (),
        np.int64(np.asarray(origins.counts).sum()),
        {"long_name": "tokens of the train split the buckets count", "units": "tokens"},
    )
    positions = list(found)
    dims.attrs = {"positions": positions, **origins.dimensions.attrs()}
    freq.attrs = {"positions": positions, "split": "train", **origins.frequency.attrs()}
    return {"dimensions": dims, "frequency": freq}
