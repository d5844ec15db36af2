"""Which tokens and layers of an activation source a metric uses."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from repgeom.activations.source import LayerSource
from repgeom.sampling import seeded_subsample


def last_token_rows(sequence: np.ndarray, position: np.ndarray) -> np.ndarray:
    """Sorted rows of the last token (the largest position) of each sequence."""
    sequence, position = np.asarray(sequence), np.asarray(position)
    order = np.lexsort((position, sequence))
    ordered = sequence[order]
    return np.sort(order[np.r_[ordered[1:] != ordered[:-1], True]])


def select_rows(
    source: LayerSource,
    drop_first_position: bool,
    token_budget: int | None,
    seed: int,
    pooling: str = "all",
) -> np.ndarray | None:
    """Sorted token rows to use (None = all): ``pooling`` 'last_token' keeps the last token of
    each sequence; then without position 0 if asked, then a seeded subsample."""
    if pooling not in ("all", "last_token"):
        raise ValueError(f"pooling must be 'all' or 'last_token', got {pooling!r}")
    rows = np.arange(source.n_tokens)
    if pooling == "last_token":
        rows = last_token_rows(source.sequence, source.position)
    if drop_first_position:
        rows = rows[np.asarray(source.position)[rows] != 0]
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
