"""The rank-restricted heads of one checkpoint (the ``bottleneck_heads`` job), in three steps.

1. :meth:`CheckpointHeads.of`: the LM head's input layer of the eval store
   (:func:`~repgeom.bottleneck.features.final_layer`), the model's unembedding (W₀, b₀, its
   soft-cap) and the memory the heads need (:meth:`HeadTraining.memory_estimate`), checked
   against the budget before anything big is allocated;
2. :meth:`CheckpointHeads.write_features`: the final representations of a seeded sample of
   train windows, written batch by batch to a temporary store (the model is not needed after);
3. :meth:`CheckpointHeads.train`: the heads trained on those features, streamed back in blocks
   of :data:`~repgeom.bottleneck.memory.BLOCK_ROWS`, and evaluated on the eval store
   (:func:`~repgeom.bottleneck.heads.rank_restricted_heads`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from repgeom.activations.architectures import Unembedding
from repgeom.activations.store import ActivationStore
from repgeom.bottleneck.features import (
    final_layer,
    next_token_blocks,
    sample_windows,
    write_final_features,
)
from repgeom.bottleneck.heads import rank_restricted_heads
from repgeom.bottleneck.memory import BLOCK_ROWS, check_heads_memory
from repgeom.bottleneck.options import HeadTraining

TARGETS = "next token within the same window (the last token of a window has none)"


def eval_batches(path: str | Path, layer: int, rows: int) -> Iterator[tuple[Any, Any]]:
    """Store blocks re-cut into batches of at most ``rows`` rows (bounded logits at eval)."""
    for x, y in next_token_blocks(path, layer, BLOCK_ROWS):
        for s in range(0, len(y), rows):
            yield x[s : s + rows], y[s : s + rows]


@dataclass(frozen=True)
class CheckpointHeads:
    """What the heads of one checkpoint are trained on: the eval store's LM-head input
    ``layer`` (and how it was chosen), the model's unembedding W₀ (V, d), b₀ or None and its
    logit soft-cap, the options and the memory estimate they were checked with."""

    cfg: HeadTraining
    store: ActivationStore
    layer: int
    layer_note: str
    weight: np.ndarray
    bias: np.ndarray | None
    softcap: float | None
    estimate: dict[str, int]

    @classmethod
    def of(
        cls,
        model: Any,
        store: ActivationStore,
        cfg: HeadTraining,
        checkpoint: tuple[str, str],
        memory_mb: int | None,
    ) -> CheckpointHeads:
        """The heads of the loaded causal LM ``model`` (``checkpoint``: its model name and
        step) evaluated on ``store``; ValueError naming the model for ranks out of range,
        MemoryError (naming what to lower) when the heads and the model need more than
        ``memory_mb`` (None: the RAM available)."""
        name, step = checkpoint
        layer, note = final_layer(store.attrs, store.layers)
        unembedding = Unembedding.of(model, f"{name} {step}")
        w0 = unembedding.weight.detach().float().cpu().numpy()
        b = unembedding.bias
        b0 = None if b is None else b.detach().float().cpu().numpy()
        v, d = w0.shape
        estimate = cfg.memory_estimate(v, d, f"model {name!r}")
        model_bytes = sum(t.numel() * t.element_size() for t in model.parameters())
        budget = None if memory_mb is None else memory_mb * 2**20
        check_heads_memory(estimate, budget, extra=model_bytes, what=f"heads of {name} {step}")
        return cls(cfg, store, layer, note, w0, b0, unembedding.softcap, estimate)

    def write_features(
        self,
        model: Any,
        tokens: str | Path,
        out_path: str | Path,
        batch_size: int,
        attrs: dict[str, Any],
    ) -> dict[str, Any]:
        """The LM-head input of a seeded sample of ``cfg.token_budget`` train targets of the
        token store ``tokens``, written to ``out_path`` (:func:`write_final_features`)."""
        windows = sample_windows(tokens, "train", self.cfg.token_budget, self.cfg.seed)
        return write_final_features(model, windows, self.layer, out_path, batch_size, attrs)

    def attrs(self, features: Mapping[str, Any]) -> dict[str, Any]:
        """The dataset attrs of the job's inputs (``features``: what :meth:`write_features`
        returned)."""
        return {
            "layer": self.layer,
            "layer_note": self.layer_note,
            "final_norm_index": int(self.store.attrs.get("final_norm_index", -1)),
            "n_train_windows": features["n_sequences"],
            "train_feature_dtype": features["layer_dtype"],
            "model_eval_loss": float(self.store.attrs.get("eval_loss", np.nan)),
            "estimated_peak_bytes": self.estimate["total"],
            "targets": TARGETS,
        }

    def train(
        self,
        features_path: str | Path,
        features: Mapping[str, Any],
        device: Any,
        attrs: Mapping[str, Any],
    ) -> xr.Dataset:
        """The heads trained on the features of ``features_path`` and evaluated on the eval
        store (:func:`rank_restricted_heads`), with ``attrs`` then :meth:`attrs`."""
        v, d = self.weight.shape
        return rank_restricted_heads(
            lambda: next_token_blocks(features_path, self.layer, BLOCK_ROWS),
            eval_batches(self.store.path, self.layer, self.cfg.batch_size),
            v,
            d,
            self.cfg,
            self.weight,
            self.bias,
            str(device),
            {**attrs, **self.attrs(features)},
            self.softcap,
        )
