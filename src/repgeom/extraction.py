"""Extraction: hidden states of every layer for token windows, written batch by batch to Zarr."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zarr
from tqdm import tqdm
from transformers import PreTrainedModel

from repgeom.bottleneck.loss import next_token_loss
from repgeom.io import atomic_path
from repgeom.models import objective
from repgeom.store import FLOAT16_MAX, LayerWriter
from repgeom.tokens import Windows

FINAL_NORM_NAMES = ("final_layer_norm", "ln_f", "norm", "final_layernorm")


def final_norm_index(model: PreTrainedModel, n_states: int) -> int | None:
    """Index of the hidden state after the final norm, or None (post-LN encoders have none)."""
    base = getattr(model, model.base_model_prefix, model)
    if any(isinstance(getattr(base, n, None), torch.nn.Module) for n in FINAL_NORM_NAMES):
        return n_states - 1
    return None


def batches(w: Windows, batch_size: int) -> list[np.ndarray]:
    """Row indices of each batch, in order."""
    return [
        np.arange(s, min(len(w.lengths), s + batch_size))
        for s in range(0, len(w.lengths), batch_size)
    ]


def token_index(windows: Windows) -> dict[str, np.ndarray]:
    """int64 ``token_id``, ``sequence`` and ``position`` of every non-padding token, in order."""
    valid = np.arange(windows.ids.shape[1])[None, :] < windows.lengths[:, None]
    index = {
        "token_id": windows.ids[valid],
        "sequence": np.repeat(np.arange(len(windows.lengths)), windows.lengths),
        "position": np.concatenate([np.arange(n) for n in windows.lengths]),
    }
    return {name: values.astype(np.int64) for name, values in index.items()}


def forward_batches(
    module: torch.nn.Module, windows: Windows, batch_size: int, desc: str
) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor, Any]]:
    """(window rows, input ids, validity mask, output with hidden states) for each batch, run on
    the module's device and trimmed to the batch's longest window."""
    device = next(module.parameters()).device
    valid_np = np.arange(windows.ids.shape[1])[None, :] < windows.lengths[:, None]
    for rows in tqdm(batches(windows, batch_size), file=sys.stderr, mininterval=5, desc=desc):
        width = int(windows.lengths[rows].max())
        ids = torch.from_numpy(windows.ids[rows, :width].astype(np.int64)).to(device)
        valid = torch.from_numpy(valid_np[rows, :width]).to(device)
        out = module(input_ids=ids, attention_mask=valid.long(), output_hidden_states=True)
        yield rows, ids, valid, out


def append_layer(writer: LayerWriter, x: torch.Tensor, layer: int, first_window: int) -> None:
    """Append one layer's token rows, in float16 where the writer and the values allow, after
    checking that they are finite (FloatingPointError naming the layer and the batch)."""
    amax = max(float(x.max()), -float(x.min())) if x.numel() else 0.0
    if not math.isfinite(amax):  # NaN and inf propagate through max/min
        raise FloatingPointError(
            f"layer {layer} has NaN or infinite activations in the batch starting at window "
            f"{first_window}; load the model in float32 (extraction.dtype) or check the checkpoint"
        )
    half = writer.dtype == np.float16 and amax <= FLOAT16_MAX
    writer.append((x.half() if half else x).cpu().numpy(), amax)


@torch.inference_mode()
def extract(
    model: PreTrainedModel,
    windows: Windows,
    out_path: str | Path,
    batch_size: int,
    attrs: dict[str, Any],
    eval_loss: bool = True,
) -> dict[str, Any]:
    """Write hidden states (all layers incl. the embedding output) of every non-padding token.

    Raises FloatingPointError naming the layer if any activation is NaN or infinite. Returns the
    summary attributes written to the store (eval loss for causal LMs when asked).
    """
    n_tokens = windows.n_tokens
    n_layers = model.config.num_hidden_layers + 1
    d = model.config.hidden_size
    causal = objective(model) == "causal"
    nll, count = 0.0, 0
    with atomic_path(out_path) as tmp:
        root = zarr.open_group(str(tmp), mode="w")
        hidden = root.create_group("hidden")
        writers = [LayerWriter(hidden, str(i), n_tokens, d) for i in range(n_layers)]
        sentence = root.create_group("sentence")
        n_seq = len(windows.lengths)
        means = [LayerWriter(sentence, str(i), n_seq, d, "float32") for i in range(n_layers)]
        for name, values in token_index(windows).items():
            root.create_array(name, data=values)
        norm_index = None
        for rows, ids, valid, out in forward_batches(model, windows, batch_size, "extract"):
            states = out.hidden_states
            if len(states) != n_layers:
                raise RuntimeError(
                    f"model returned {len(states)} hidden states, expected {n_layers}"
                )
            norm_index = final_norm_index(model, len(states))
            full = bool(valid.all())  # no padding: views instead of masked copies
            row_of_token = valid.nonzero()[:, 0]  # batch row of each kept token
            counts = valid.sum(dim=1, keepdim=True).float()
            for i, h in enumerate(states):
                h = h.float()
                x = h.reshape(-1, h.shape[-1]) if full else h[valid]
                append_layer(writers[i], x, i, int(rows[0]))
                # masked mean: each row's kept tokens over their count (padding never enters)
                if full:
                    mean = h.mean(dim=1)
                else:
                    sums = torch.zeros(len(rows), x.shape[1], device=x.device)
                    mean = sums.index_add_(0, row_of_token, x) / counts
                means[i].append(mean.cpu().numpy())
            if eval_loss and causal:
                s, c = next_token_loss(out.logits, ids, valid)
                nll, count = nll + s, count + c
        for w in writers + means:
            w.close()
        summary: dict[str, Any] = {
            "n_tokens": n_tokens,
            "n_sequences": len(windows.lengths),
            "n_layers": n_layers,
            "hidden_size": d,
            "layer_dtypes": [str(w.dtype) for w in writers],
            "final_norm_index": -1 if norm_index is None else norm_index,
            "objective": "causal" if causal else "masked",
            "sentence_level": "mean of each sequence's non-padding tokens, float32",
        }
        if eval_loss and causal and count:
            summary.update(eval_loss=nll / count, eval_loss_tokens=count)
        root.attrs.update({**attrs, **summary})
    return summary
