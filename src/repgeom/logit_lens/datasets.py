"""The logit-lens dataset of one model: every checkpoint and corpus, read from its stores."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import xarray as xr
import zarr

from repgeom.io import checked_read
from repgeom.metrics.gather import gather, with_model
from repgeom.steps import Checkpoint

VARIABLES = (
    "logit_lens_loss",
    "logit_lens_agreement",
    "logit_lens_loss_se",
    "logit_lens_agreement_se",
)


def store_lens(path: str | Path) -> xr.Dataset:
    """The lens of one activation store: loss and agreement over (layer, decoding), with their
    standard errors and the number of positions decoded."""
    ds = xr.open_zarr(path)
    missing = [v for v in VARIABLES if v not in ds]
    if missing:
        raise ValueError(
            f"{path} holds no logit lens ({', '.join(missing)} absent): its model has no causal "
            "LM head or was not in logit_lens.models when it was extracted"
        )
    try:
        out = ds[list(VARIABLES)].load()
    except ValueError:  # a chunk failing its checksum: name the store and the chunk
        root = zarr.open_group(str(path), mode="r")
        for name in VARIABLES:
            checked_read(path, root[name], lambda a=root[name]: a[...])
        raise
    out["logit_lens_tokens"] = ((), int(ds.attrs["logit_lens_tokens"]))
    out["logit_lens_tokens"].attrs = {"long_name": "positions decoded", "units": "tokens"}
    return out.drop_vars([c for c in out.coords if c not in ("layer", "decoding")])


def lens_dataset(
    paths: Mapping[tuple[str, str], str | Path],
    steps: Sequence[str | Checkpoint],
    corpora: Sequence[str],
    model: str,
) -> xr.Dataset:
    """(step, corpus, layer, decoding) loss and agreement of one model with their standard
    errors, the model's name as a scalar coordinate."""
    parts = {key: store_lens(path) for key, path in paths.items()}
    return with_model(gather(parts, steps, corpora), model)
