"""Which tokens and layers of an activation source a metric uses."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from repgeom.activations.source import LayerSource
from repgeom.sampling import seeded_subsample


def select_rows(
    source: LayerSource, drop_first_position: bool, token_budget: int | None, seed: int
) -> np.ndarray | None:
    """Sorted token rows to use (None = all): without position 0 if asked, a seeded subsample."""
    rows = np.arange(source.n_tokens)
    if drop_first_position:
        rows = rows[np.asarray(source.position) != 0]
    if token_budget is not None:
        rows = seeded_subsample(rows, token_budget, seed)
    if len(rows) < 2:
        raise ValueError(f"only {len(rows)} token(s) left after selection; metrics need at least 2")
    return None if len(rows) == source.n_tokens else rows


def layers_to_use(source: LayerSource, layers: Sequence[int] | None) -> list[int]:
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
