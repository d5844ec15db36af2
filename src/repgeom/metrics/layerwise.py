"""Per-layer metric datasets over an activation source, with the shared token selection."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from repgeom.metrics.anisotropy import anisotropy_from_eigvals
from repgeom.metrics.moments import Moments
from repgeom.source import LayerSource


def select_rows(
    source: LayerSource, drop_first_position: bool, token_budget: int | None, seed: int
) -> np.ndarray | None:
    """Sorted token rows to use (None = all): without position 0 if asked, a seeded subsample."""
    rows = np.arange(source.n_tokens)
    if drop_first_position:
        rows = rows[np.asarray(source.position) != 0]
    if token_budget is not None and token_budget < len(rows):
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(rows, size=token_budget, replace=False))
    if len(rows) < 2:
        raise ValueError(f"only {len(rows)} token(s) left after selection; metrics need at least 2")
    return None if len(rows) == source.n_tokens else rows


def layers_to_use(source: LayerSource, layers: list[int] | None) -> list[int]:
    """The configured layers (negative = from the end), checked against the source."""
    if layers is None:
        return list(source.layers)
    n = len(source.layers)
    out = []
    for layer in layers:
        idx = layer + n if layer < 0 else layer
        if not 0 <= idx < n:
            raise ValueError(f"layer {layer} does not exist; the store has layers 0..{n - 1}")
        out.append(source.layers[idx])
    return sorted(set(out))


def anisotropy_dataset(source: LayerSource, options: dict[str, Any]) -> xr.Dataset:
    """Anisotropy σ₁²/‖X_c‖_F² of each layer, one streaming float64 pass per layer."""
    rows = select_rows(
        source, options["drop_first_position"], options.get("token_budget"), options.get("seed", 0)
    )
    layers = layers_to_use(source, options.get("layers"))
    values = []
    for layer in layers:
        acc = Moments.of(source.iter_blocks(layer, rows), source.hidden_size)
        values.append(anisotropy_from_eigvals(acc.eigvalsh()))
    n = source.n_tokens if rows is None else len(rows)
    return xr.Dataset(
        {
            "anisotropy": (
                "layer",
                np.asarray(values),
                {"long_name": "anisotropy (σ₁² / ‖X_c‖_F²)", "units": "1"},
            )
        },
        coords={"layer": layers},
        attrs={"n_tokens": n, "drop_first_position": int(options["drop_first_position"])},
    )
