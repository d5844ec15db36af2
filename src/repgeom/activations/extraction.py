"""Extraction: hidden states of every layer for token windows, written batch by batch to Zarr.

The base model runs (no LM-head logits). Only what is asked is decoded: the eval loss decodes
the last hidden state of every position that predicts a token, a chunk of positions at a time
(:func:`repgeom.activations.loss.predicting_nll`); the logit lens decodes every layer on its
seeded sample of positions (:mod:`repgeom.activations.lens`), reusing the eval loss's decoding of
the last layer when both are asked.
Windows of different lengths (sentences) are batched by length within buckets of consecutive
rows, so little padding is computed, and every bucket is written back in corpus order.
With ``pre_final_norm`` the input of the model's final norm (the last block's output, before
``ln_f`` / ``final_layer_norm`` / ``norm``) is stored beside the layers (:class:`NormInput`).
"""

from __future__ import annotations

import inspect
import math
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm
from transformers import PreTrainedModel

from repgeom.activations.checkpoint import model_context
from repgeom.activations.lens import (
    DECODINGS,
    LensSample,
    LogitLens,
    causal_logits,
    check_head,
    final_norm,
    lens_positions,
)
from repgeom.activations.loss import predicting_nll
from repgeom.activations.models import objective
from repgeom.activations.size import BUCKET_BYTES
from repgeom.activations.store import FLOAT16_MAX, LayerWriter, StoreWriter
from repgeom.data.tokens import Windows
from repgeom.io import atomic_path


def final_norm_index(model: PreTrainedModel, n_states: int) -> int | None:
    """Index of the hidden state after the final norm, or None (post-LN encoders have none)."""
    return n_states - 1 if final_norm(model) is not None else None


# tolerance of the first batch's check that the final norm maps its captured input to the last
# hidden state (the same module on the same tensor: equal but for kernel differences)
NORM_CHECK_TOL = {torch.float16: 2e-3, torch.bfloat16: 2e-2}


class NormInput:
    """The input of a model's final norm in each forward pass: a forward pre-hook on the module
    :func:`final_norm` finds records its first call after :meth:`arm` (later calls, such as the
    logit lens applying the norm to every layer, are not recorded).

    In GPT-2 (``ln_f``), GPT-NeoX (``final_layer_norm``) and Llama-likes (``norm``) that call
    is the last block's output on its way to the last hidden state; :meth:`take` checks it on
    the first batch: the norm applied to it again must give the last hidden state."""

    def __init__(self, norm: torch.nn.Module, checkpoint: str) -> None:
        self.norm, self.checkpoint = norm, checkpoint
        self.armed, self.checked = False, False
        self.value: torch.Tensor | None = None
        self.handle = norm.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        if self.armed:
            self.value = args[0] if args else next(iter(kwargs.values()))
            self.armed = False

    def arm(self) -> None:
        """Record the norm's next call (call before the forward pass)."""
        self.armed, self.value = True, None

    def take(self, last: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """The input recorded since :meth:`arm`, (batch, position, hidden) like ``last`` (the
        pass's last hidden state); RuntimeError naming the checkpoint when the norm was not
        called, or (first batch) does not map it to ``last`` on the ``valid`` positions."""
        value, self.value, self.armed = self.value, None, False
        what = f"the final norm ({type(self.norm).__name__}) of checkpoint {self.checkpoint}"
        if value is None or value.shape != last.shape:
            raise RuntimeError(f"{what} was not called on the last hidden state in the forward")
        if not self.checked:
            tol = NORM_CHECK_TOL.get(last.dtype, 1e-4)
            again = self.norm(value)[valid].float()
            if not torch.allclose(again, last[valid].float(), rtol=tol, atol=tol, equal_nan=True):
                raise RuntimeError(
                    f"{what} does not map its recorded input to the last hidden state, so that "
                    "input is not the state before the norm; use metrics.geometry.conventions."
                    "final_norm: after for this model"
                )
            self.checked = True
        return value

    def remove(self) -> None:
        self.handle.remove()


@contextmanager
def norm_input(model: PreTrainedModel, asked: bool, checkpoint: str) -> Iterator[NormInput | None]:
    """A :class:`NormInput` on the model's final norm while the block runs, when ``asked`` and
    the model has one (post-LN encoders have none: None)."""
    norm = final_norm(model) if asked else None
    if norm is None:
        yield None
        return
    capture = NormInput(norm, checkpoint)
    try:
        yield capture
    finally:
        capture.remove()


def pre_final_norm_state(model: PreTrainedModel, capture: NormInput | None) -> str:
    """The store's ``pre_final_norm`` attr: ``stored``, ``none`` (no final norm: the last layer
    is the last block's output, before = after) or ``not_stored``."""
    if capture is not None:
        return "stored"
    return "none" if final_norm(model) is None else "not_stored"


def batches_in_order(n_rows: int, batch_size: int) -> list[np.ndarray]:
    """Row indices of consecutive batches, in order."""
    return [np.arange(s, min(n_rows, s + batch_size)) for s in range(0, n_rows, batch_size)]


def length_batches(
    lengths: np.ndarray, batch_size: int, bucket_rows: int | None = None
) -> list[list[np.ndarray]]:
    """The batches of every bucket of consecutive rows, buckets in order.

    Inside a bucket the rows are batched longest first, so windows of similar length share a
    batch; equal lengths (fixed windows) keep their order. ``bucket_rows`` (default: all rows)
    bounds how many rows are held before being written back in order.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    n = len(lengths)
    size = n if bucket_rows is None else max(batch_size, bucket_rows)
    out = []
    for start in range(0, n, max(1, size)):
        rows = np.arange(start, min(n, start + size))
        order = rows[np.argsort(-lengths[rows], kind="stable")]
        out.append([order[i : i + batch_size] for i in range(0, len(order), batch_size)])
    return out


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
    module: torch.nn.Module, windows: Windows, batches: list[np.ndarray], desc: str
) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor, Any]]:
    """(window rows, input ids, validity mask, output with hidden states) for each batch of
    rows, run on the module's device and trimmed to the batch's longest window."""
    device = next(module.parameters()).device
    # one pass over whole windows: a decoder's key/value cache would only be concatenated
    takes = inspect.signature(module.forward).parameters
    extra = {"use_cache": False} if "use_cache" in takes else {}
    valid_np = np.arange(windows.ids.shape[1])[None, :] < windows.lengths[:, None]
    for rows in tqdm(batches, file=sys.stderr, mininterval=5, desc=desc):
        width = int(windows.lengths[rows].max())
        ids = torch.from_numpy(windows.ids[rows, :width].astype(np.int64)).to(device)
        valid = torch.from_numpy(valid_np[rows, :width]).to(device)
        out = module(input_ids=ids, attention_mask=valid.long(), output_hidden_states=True, **extra)
        yield rows, ids, valid, out


def check_windows_fit(model: PreTrainedModel, windows: Windows, checkpoint: str) -> None:
    """ValueError (not an IndexError deep in the forward) when the windows are longer than
    the model's context or hold a token id its input embedding has no row for."""
    longest = int(windows.lengths.max()) if len(windows.lengths) else 0
    context = model_context(model.config.to_dict())
    if context is not None and longest > context[0]:
        raise ValueError(
            f"checkpoint {checkpoint} reads at most {context[0]} positions ({context[1]}) but "
            f"the token windows are {longest} long: set the tokenizer's window ≤ {context[0]}"
        )
    embedding = model.get_input_embeddings()
    rows = getattr(embedding, "num_embeddings", None)
    valid = np.arange(windows.ids.shape[1])[None, :] < windows.lengths[:, None]
    top = int(windows.ids[valid].max()) if valid.any() else -1
    if rows is not None and top >= rows:
        raise ValueError(
            f"token id {top} has no row in the {rows}-row input embedding of checkpoint "
            f"{checkpoint}: the tokens were made with a tokenizer larger than the model's "
            "vocabulary; use the model's own tokenizer"
        )


def checkpoint_name(model: PreTrainedModel, attrs: Mapping[str, Any] | None) -> str:
    """How messages name a checkpoint: ``model/step`` from the job's attrs when they say it,
    else where the model was loaded from."""
    if attrs and "model" in attrs and "step" in attrs:
        return f"{attrs['model']}/{attrs['step']}"
    return str(getattr(model, "name_or_path", "") or type(model).__name__)


def nonfinite_message(
    layer: int, first_window: int, checkpoint: str, compute_dtype: torch.dtype
) -> str:
    """What is true of NaN or infinite activations for the dtype the model computes in: in
    float16 or bfloat16 loading it in float32 may cure them; in float32 or float64 the
    checkpoint itself produces them."""
    where = (
        f"layer {layer} of checkpoint {checkpoint} has NaN or infinite activations in the batch "
        f"starting at window {first_window}"
    )
    dtype = str(compute_dtype).removeprefix("torch.")
    if compute_dtype in (torch.float16, torch.bfloat16):
        return (
            f"{where}, computed in {dtype}, whose range or precision may be what fails: load "
            "the model in float32 (extraction.dtype: float32)"
        )
    return (
        f"{where}, computed in {dtype} already: the checkpoint itself produces non-finite "
        "values (check its weights and config; another dtype will not help)"
    )


def storage_rows(
    x: torch.Tensor,
    dtype: np.dtype,
    layer: int,
    first_window: int,
    checkpoint: str,
    compute_dtype: torch.dtype,
) -> tuple[np.ndarray, float]:
    """One layer's token rows on the CPU, in float16 where ``dtype`` and the values allow, and
    their largest |value|, after checking that they are finite (FloatingPointError naming the
    layer, the batch and the checkpoint, see :func:`nonfinite_message`)."""
    amax = max(float(x.max()), -float(x.min())) if x.numel() else 0.0
    if not math.isfinite(amax):  # NaN and inf propagate through max/min
        raise FloatingPointError(nonfinite_message(layer, first_window, checkpoint, compute_dtype))
    half = dtype == np.float16 and amax <= FLOAT16_MAX
    return (x.half() if half else x).cpu().numpy(), amax


def batch_to_host(
    states: Sequence[torch.Tensor],
    valid: torch.Tensor,
    dtypes: Sequence[np.dtype],
    first_window: int,
    checkpoint: str,
    compute_dtype: torch.dtype,
    stacked: bool,
) -> tuple[list[tuple[np.ndarray, float]], list[np.ndarray]]:
    """Every layer's kept token rows (see :func:`storage_rows`) and per-row means of one batch,
    on the CPU. ``stacked`` (a GPU): all layers at once, in three transfers per batch (their
    largest |values|, the rows, the means) instead of several synchronous copies per layer."""
    full = bool(valid.all())  # no padding: views instead of masked copies
    counts = valid.sum(dim=1, keepdim=True).float()
    if not stacked:
        rows, means = [], []
        row_of_token = valid.nonzero()[:, 0]  # batch row of each kept token
        for i, h in enumerate(states):
            h = h.float()
            x = h.reshape(-1, h.shape[-1]) if full else h[valid]
            rows.append(storage_rows(x, dtypes[i], i, first_window, checkpoint, compute_dtype))
            if full:
                mean = h.mean(dim=1)
            else:  # masked mean: each row's kept tokens over their count (no padding)
                sums = torch.zeros(len(h), x.shape[1], device=x.device)
                mean = sums.index_add_(0, row_of_token, x) / counts
            means.append(mean.cpu().numpy())
        return rows, means
    h = torch.stack(list(states)).float()  # (layer, batch, position, hidden)
    x = h.flatten(1, 2) if full else h[:, valid]
    mean = h.mean(dim=2) if full else (h * valid[None, :, :, None]).sum(dim=2) / counts
    amax = x.abs().amax(dim=(1, 2)).cpu().numpy() if x.shape[1] else np.zeros(len(h))
    for i, a in enumerate(amax):
        if not math.isfinite(float(a)):
            raise FloatingPointError(nonfinite_message(i, first_window, checkpoint, compute_dtype))
    half = [d == np.float16 and a <= FLOAT16_MAX for d, a in zip(dtypes, amax, strict=True)]
    host = (x.half() if all(half) else x).cpu().numpy()
    rows = [
        (host[i].astype(np.float16) if half[i] else host[i], float(amax[i])) for i in range(len(h))
    ]
    return rows, list(mean.cpu().numpy())


def append_layer(
    writer: LayerWriter,
    x: torch.Tensor,
    layer: int,
    first_window: int,
    checkpoint: str,
    compute_dtype: torch.dtype,
) -> None:
    """Append one layer's token rows to its writer (see :func:`storage_rows`)."""
    rows, amax = storage_rows(x, writer.dtype, layer, first_window, checkpoint, compute_dtype)
    writer.append(rows, amax)


def bucket_rows(windows: Windows, n_layers: int, hidden_size: int, batch_size: int) -> int:
    """Rows per bucket: one batch for windows of one length (nothing to sort: written as they
    come), else as many as keep the held float16 hidden states within BUCKET_BYTES."""
    if len(windows.lengths) == 0 or (windows.lengths == windows.lengths[0]).all():
        return batch_size
    per_row = max(1.0, float(windows.lengths.mean())) * n_layers * hidden_size * 2
    return max(batch_size, int(BUCKET_BYTES // per_row))


def corpus_order(lengths: np.ndarray, done: np.ndarray) -> np.ndarray:
    """Token permutation from the order rows were run in (``done``) to their sorted order."""
    starts = np.concatenate([[0], np.cumsum(lengths[done])[:-1]])
    by_row = np.argsort(done, kind="stable")
    return np.concatenate(
        [np.arange(starts[i], starts[i] + lengths[done[i]]) for i in by_row]
    ).astype(np.int64)


class Decoding:
    """What one extraction pass decodes with the model's own head, batch by batch: the eval
    loss (``eval_loss``) and the logit lens of every layer on its sample of positions
    (``logit_lens``), the lens reusing the eval loss's decoding of the last layer."""

    def __init__(
        self,
        model: PreTrainedModel,
        windows: Windows,
        n_layers: int,
        eval_loss: bool,
        logit_lens: LensSample | None,
    ) -> None:
        self.model = model
        self.eval_loss = eval_loss
        self.logits = causal_logits(model) if eval_loss or logit_lens is not None else None
        self.lens = None if logit_lens is None else LogitLens(model, n_layers)
        self.sampled = (
            None
            if logit_lens is None
            else lens_positions(windows.lengths, windows.ids.shape[1], logit_lens)
        )
        self.nll, self.count, self.checked = 0.0, 0, False

    def update(self, batch: np.ndarray, ids: torch.Tensor, valid: torch.Tensor, out: Any) -> None:
        """Decode one batch (window ``batch`` rows, the base model's output ``out``): the head
        is checked against the model's own logits on the first batch."""
        if self.logits is not None and not self.checked:
            check_head(self.model, self.logits, out.last_hidden_state, ids, valid)
            self.checked = True
        selected = (  # the lens's positions in this batch, (B, T − 1)
            None
            if self.sampled is None
            else torch.from_numpy(self.sampled[batch, : ids.shape[1] - 1]).to(ids.device)
        )
        final = None
        if self.eval_loss:
            keep = valid[:, :-1] & valid[:, 1:]
            chosen = False if selected is None else selected[keep]
            vocab = self.model.config.vocab_size
            hidden = out.last_hidden_state
            losses, top = predicting_nll(self.logits, hidden, ids, valid, vocab, chosen)
            self.nll, self.count = self.nll + float(losses.double().sum()), self.count + len(losses)
            if selected is not None:  # the lens reuses the last layer's decoding
                final = (losses[chosen], top)
        if self.lens is not None:
            self.lens.update(out.hidden_states, ids, selected, final)

    def finish(self, store: StoreWriter) -> dict[str, Any]:
        """The summary attributes of what was decoded (the eval loss when asked and measured,
        the lens's token count), the lens's results added to ``store``."""
        summary: dict[str, Any] = {}
        if self.eval_loss and self.count:
            summary.update(eval_loss=self.nll / self.count, eval_loss_tokens=self.count)
        if self.lens is not None:
            store.add_lens(self.lens.results(), DECODINGS)
            summary["logit_lens_tokens"] = self.lens.count
        return summary


def check_decodable(model: PreTrainedModel, eval_loss: bool, logit_lens: bool) -> str:
    """The model's objective; ValueError when the eval loss or the lens is asked of a model
    without a causal LM head."""
    kind = objective(model)
    for name, asked in (("eval loss", eval_loss), ("logit lens", logit_lens)):
        if asked and kind != "causal":
            raise ValueError(
                f"the {name} needs a causal LM head; this checkpoint loads as {kind!r} "
                f"({type(model).__name__})"
            )
    return kind


def run_bucket(
    runs: Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor, Any]],
    n_batches: int,
    model: PreTrainedModel,
    dtypes: Sequence[np.dtype],
    checkpoint: str,
    stacked: bool,
    decoding: Decoding,
    capture: NormInput | None = None,
) -> tuple[list[list[tuple[np.ndarray, float]]], list[list[np.ndarray]], int]:
    """The next ``n_batches`` forward passes of ``runs`` (:func:`forward_batches`), decoded by
    ``decoding``: every layer's host rows and row means per batch (:func:`batch_to_host`), then
    with ``capture`` those of the final norm's input (``dtypes`` has one more entry), and the
    positions computed (padding included)."""
    n_states = len(dtypes)
    n_layers = n_states - (capture is not None)
    held: list[list[tuple[np.ndarray, float]]] = [[] for _ in range(n_states)]
    held_means: list[list[np.ndarray]] = [[] for _ in range(n_states)]
    computed = 0
    for _ in range(n_batches):
        if capture is not None:
            capture.arm()
        batch, ids, valid, out = next(runs)
        states = out.hidden_states
        if len(states) != n_layers:
            raise RuntimeError(f"model returned {len(states)} hidden states, expected {n_layers}")
        if capture is not None:  # after the layers: a non-finite value is named at its layer
            states = (*states, capture.take(states[-1], valid))
        computed += valid.numel()
        rows, row_means = batch_to_host(
            states, valid, dtypes, int(batch.min()), checkpoint, model.dtype, stacked
        )
        for i in range(n_states):
            held[i].append(rows[i])
            held_means[i].append(row_means[i])
        decoding.update(batch, ids, valid, out)
    return held, held_means, computed


def write_bucket(
    store: StoreWriter,
    held: Sequence[Sequence[tuple[np.ndarray, float]]],
    held_means: Sequence[Sequence[np.ndarray]],
    done: np.ndarray,
    lengths: np.ndarray,
) -> None:
    """Append a bucket's rows and row means (of the windows ``done``, in the order they were
    run) to every layer of ``store`` (and the final norm's input where it keeps it), in corpus
    order."""
    in_order = bool((np.diff(done) > 0).all())
    perm = None if in_order else corpus_order(lengths, done)
    row_perm = None if in_order else np.argsort(done, kind="stable")
    for i, writer in enumerate(store.row_writers):
        x = np.concatenate([r for r, _ in held[i]])
        writer.append(x if perm is None else x[perm], max(a for _, a in held[i]))
        m = np.concatenate(held_means[i])
        store.mean_writers[i].append(m if row_perm is None else m[row_perm])


@torch.inference_mode()
def extract(
    model: PreTrainedModel,
    windows: Windows,
    out_path: str | Path,
    batch_size: int,
    attrs: dict[str, Any],
    eval_loss: bool = False,
    logit_lens: LensSample | None = None,
    stacked_transfer: bool | None = None,
    pre_final_norm: bool = False,
) -> dict[str, Any]:
    """Write hidden states (all layers incl. the embedding output) of every non-padding token,
    with ``eval_loss`` the next-token eval loss, and with ``logit_lens`` the lens of every
    layer on that sample of positions (:mod:`repgeom.activations.lens`). ``stacked_transfer``
    (default: on a GPU) moves each batch's states to the host at once (:func:`batch_to_host`).
    ``pre_final_norm``: store the input of the model's final norm at the last layer too (not
    as a layer: :mod:`repgeom.activations.store`), where the model has one; the store's attr
    ``pre_final_norm`` says ``stored``, ``none`` (no final norm) or ``not_stored``.

    Raises FloatingPointError naming the layer, the batch and the checkpoint (``model/step``
    from ``attrs``) if any activation is NaN or infinite, and
    ValueError when the eval loss or the lens is asked of a model without a causal LM head.
    Returns the summary attributes written to the store (the eval loss when asked).
    """
    kind = check_decodable(model, eval_loss, logit_lens is not None)
    n_tokens = windows.n_tokens
    n_layers = model.config.num_hidden_layers + 1
    d = model.config.hidden_size
    decoding = Decoding(model, windows, n_layers, eval_loss, logit_lens)
    checkpoint = checkpoint_name(model, attrs)
    check_windows_fit(model, windows, checkpoint)
    if stacked_transfer is None:
        stacked_transfer = next(model.parameters()).device.type != "cpu"
    # the final norm's input: one state more, where asked and the model has a final norm
    keep_pre = pre_final_norm and final_norm(model) is not None
    n_states = n_layers + keep_pre
    plan = length_batches(
        windows.lengths, batch_size, bucket_rows(windows, n_states, d, batch_size)
    )
    computed = 0
    with (
        norm_input(model, keep_pre, checkpoint) as capture,
        atomic_path(out_path) as tmp,
        StoreWriter(
            tmp,
            range(n_layers),
            d,
            token_index(windows),
            windows.lengths,
            pre_final_norm=n_layers - 1 if keep_pre else None,
        ) as store,
    ):
        dtypes = [w.dtype for w in store.row_writers]
        runs = forward_batches(model.base_model, windows, [b for bs in plan for b in bs], "extract")
        for batches in plan:
            held, held_means, n = run_bucket(
                runs, len(batches), model, dtypes, checkpoint, stacked_transfer, decoding, capture
            )
            computed += n
            write_bucket(store, held, held_means, np.concatenate(batches), windows.lengths)
        norm_index = final_norm_index(model, n_layers) if plan else None
        summary: dict[str, Any] = {
            "n_tokens": n_tokens,
            "n_sequences": len(windows.lengths),
            "n_layers": n_layers,
            "hidden_size": d,
            "final_norm_index": -1 if norm_index is None else norm_index,
            "pre_final_norm": pre_final_norm_state(model, capture),
            "objective": kind,
            "sentence_level": "mean of each sequence's non-padding tokens, float32",
            "padding_fraction": 1.0 - n_tokens / computed if computed else 0.0,
            "batching": "by length within buckets of consecutive windows; stored in corpus order",
        }
        summary.update(decoding.finish(store))
        summary.update(store.close({**attrs, **summary}))
    return summary
