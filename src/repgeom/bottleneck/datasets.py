"""Datasets of the softmax-bottleneck study assembled over checkpoints (no torch import).

- :func:`eval_loss_dataset`: the eval cross-entropy that extraction stored with each activation
  store (``eval_loss``, ``eval_loss_tokens`` attrs; see :mod:`repgeom.activations.loss`) over
  (step, corpus). A store without it (a masked LM, or ``extraction.eval_loss: false``) gives NaN
  and 0 tokens, and the dataset's ``missing_eval_loss`` attr lists it.
- :func:`last_layer_cosine`: the mean pairwise cosine of the uncentred last-layer token vectors
  of a store (Ethayarajh 2019), (‖Σuᵢ‖² − n)/(n(n − 1)) with uᵢ = xᵢ/‖xᵢ‖, in one streaming
  float64 pass (:class:`repgeom.metrics.family.FamilyAccumulator`).
- :func:`stack_steps`: per-checkpoint datasets stacked on a ``step`` dim with the numeric
  ``step_number`` (and ``tokens_seen``) coordinates of :func:`repgeom.steps.step_coords`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from repgeom.metrics.family import FamilyAccumulator, mean_cosine_from_sum
from repgeom.steps import Checkpoint, as_checkpoints, step_coords


def eval_loss_dataset(
    store_attrs: Mapping[tuple[str, str], Mapping[str, Any]],
    steps: Sequence[str | Checkpoint],
    corpora: Sequence[str],
    attrs: dict[str, Any] | None = None,
) -> xr.Dataset:
    """eval_loss and eval_loss_tokens over (step, corpus) from activation-store attrs."""
    checkpoints = as_checkpoints(steps)
    steps = [c.label for c in checkpoints]
    missing_keys = [(s, c) for s in steps for c in corpora if (s, c) not in store_attrs]
    if missing_keys:
        raise KeyError(f"no activation-store attrs for (step, corpus) {missing_keys}")
    loss = np.full((len(steps), len(corpora)), np.nan)
    count = np.zeros((len(steps), len(corpora)), dtype=np.int64)
    absent = []
    for i, s in enumerate(steps):
        for j, c in enumerate(corpora):
            a = store_attrs[(s, c)]
            if a.get("eval_loss") is None:
                absent.append(f"{s}/{c} ({a.get('objective', 'unknown')} LM)")
                continue
            value = float(a["eval_loss"])
            if not np.isfinite(value):
                raise ValueError(f"eval_loss of {s}/{c} is {value}; check the checkpoint")
            loss[i, j], count[i, j] = value, int(a["eval_loss_tokens"])
    return xr.Dataset(
        {
            "eval_loss": (
                ("step", "corpus"),
                loss,
                {
                    "long_name": "eval next-token cross-entropy (mean over predicted tokens)",
                    "units": "nat/token",
                },
            ),
            "eval_loss_tokens": (
                ("step", "corpus"),
                count,
                {"long_name": "predicted tokens in the eval loss", "units": "tokens"},
            ),
        },
        coords={**step_coords(checkpoints), "corpus": ("corpus", list(corpora))},
        attrs={
            "missing_eval_loss": json.dumps(absent),
            "definition": "Σ −log p(t_{i+1} | t_≤i) / n over the eval windows of the activation "
            "store, in the extraction forward pass; NaN where the model has no next-token loss",
            **(attrs or {}),
        },
    )


def last_layer_cosine(store: Any, block: int = 65536) -> tuple[float, int, int]:
    """(mean pairwise cosine, layer, tokens) of the last layer of an activation store."""
    layer = max(store.layers)
    acc = FamilyAccumulator.of(store.iter_blocks(layer, block=block), store.hidden_size)
    return mean_cosine_from_sum(acc.unit_sum, acc.moments.n), layer, acc.moments.n


def cosine_dataset(
    values: Mapping[tuple[str, str], tuple[float, int, int]],
    steps: Sequence[str | Checkpoint],
    corpora: Sequence[str],
    attrs: dict[str, Any] | None = None,
) -> xr.Dataset:
    """mean_cosine over (step, corpus) from :func:`last_layer_cosine` results."""
    checkpoints = as_checkpoints(steps)
    steps = [c.label for c in checkpoints]
    cos = np.array([[values[(s, c)][0] for c in corpora] for s in steps], dtype=np.float64)
    layer = np.array([[values[(s, c)][1] for c in corpora] for s in steps], dtype=np.int64)
    n = np.array([[values[(s, c)][2] for c in corpora] for s in steps], dtype=np.int64)
    return xr.Dataset(
        {
            "mean_cosine": (
                ("step", "corpus"),
                cos,
                {
                    "long_name": "mean pairwise cosine of the uncentred last-layer token vectors",
                    "units": "1",
                },
            ),
            "layer": (("step", "corpus"), layer, {"long_name": "layer used", "units": "1"}),
            "n_tokens": (("step", "corpus"), n, {"long_name": "token vectors", "units": "tokens"}),
        },
        coords={**step_coords(checkpoints), "corpus": ("corpus", list(corpora))},
        attrs={
            "definition": "(‖Σuᵢ‖² − n)/(n(n − 1)), uᵢ = xᵢ/‖xᵢ‖ over every token of the "
            "eval activations (Ethayarajh 2019), the last hidden state of the store",
            **(attrs or {}),
        },
    )


def stack_steps(datasets: Sequence[xr.Dataset], steps: Sequence[str | Checkpoint]) -> xr.Dataset:
    """Per-checkpoint datasets concatenated on a new ``step`` dim, with its step coordinates."""
    if len(datasets) != len(steps) or not datasets:
        raise ValueError(f"need one dataset per step, got {len(datasets)} for {len(steps)} steps")
    out = xr.concat(list(datasets), dim="step", combine_attrs="drop_conflicts")
    return out.assign_coords(step_coords(as_checkpoints(steps)))
