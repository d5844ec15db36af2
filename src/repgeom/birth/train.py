"""Training of one variant with periodic evaluation and probes; results as xarray Datasets."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import xarray as xr
from torch import nn
from torch.nn import functional as F

from repgeom.birth.config import BirthConfig
from repgeom.birth.data import Batch, BigramLanguage, Split, batch_rng, generate, make_language
from repgeom.birth.data import output_pools as _output_pools
from repgeom.birth.models import FreezeSchedule, SimplifiedTransformer, build_model
from repgeom.birth.probes import (
    induction_mass,
    induction_targets,
    previous_token_mass,
    probe_wk1,
    probe_wk2,
    probe_wo2,
)
from repgeom.data.corpus import content_sha256
from repgeom.provenance import provenance
from repgeom.runtime import resolve_device

#: Data variables of the metrics Dataset: name → (long_name, units).
METRICS: dict[str, tuple[str, str]] = {
    "loss": ("training loss on the current batch (objective of the config)", "nat"),
    "loss_bigram": ("test loss on positions whose target follows the bigram", "nat"),
    "loss_head": ("test loss on in-context positions (trigger seen before)", "nat"),
    "acc_incontext": ("test accuracy on in-context positions", "1"),
    "acc_incontext_ood": ("accuracy on in-context positions, held-out output tokens", "1"),
    "attn_prev_token": ("layer-1 attention mass on the previous token", "1"),
    "attn_induction": (
        "layer-2 attention mass after earlier occurrences of the token, in-context queries",
        "1",
    ),
    "attn_induction_all": (
        "layer-2 attention mass after earlier occurrences of the token, all such queries",
        "1",
    ),
    "probe_wo2": ("recall of the output memory W_O2", "1"),
    "probe_wk2": ("recall of the layer-2 key memory W_K2", "1"),
    "probe_wk1": ("recall of the layer-1 positional key memory W_K1", "1"),
}


def output_pools(cfg: BirthConfig) -> tuple[np.ndarray, np.ndarray]:
    """(training output ids, held-out OOD output ids) of a config."""
    return _output_pools(cfg.n_vocab, cfg.ood_fraction)


def sample_batch(
    language: BigramLanguage,
    cfg: BirthConfig,
    seed: int,
    step: int,
    split: Split = "train",
    batch_size: int | None = None,
) -> Batch:
    """The batch of ``split`` at ``step``: a deterministic function of (seed, split, step).

    ``train`` and ``test`` draw trigger outputs from the training pool, ``ood`` from the
    held-out pool only. The batch size defaults to ``cfg.batch_size`` for ``train`` and
    ``cfg.eval_batch_size`` otherwise.
    """
    if language.n_vocab != cfg.n_vocab:
        raise ValueError(
            f"language has {language.n_vocab} tokens but cfg.n_vocab={cfg.n_vocab}; "
            "build the language with the config's n_vocab"
        )
    train_pool, ood_pool = output_pools(cfg)
    if split == "ood" and ood_pool.size == 0:
        raise ValueError("split 'ood' needs held-out output tokens; set ood_fraction > 0")
    if batch_size is None:
        batch_size = cfg.batch_size if split == "train" else cfg.eval_batch_size
    return generate(
        language,
        batch_rng(seed, step, split),
        batch_size,
        cfg.seq_len,
        cfg.n_triggers,
        cfg.fixed_triggers,
        ood_pool if split == "ood" else train_pool,
        cfg.bigram_outputs,
        cfg.no_repeat,
    )


def _tensors(batch: Batch, device: torch.device) -> tuple[torch.Tensor, ...]:
    return tuple(
        torch.from_numpy(np.ascontiguousarray(a)).to(device)
        for a in (batch.inputs, batch.targets, batch.occurrence)
    )


def _ce(logits: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over masked positions (0 · logits when none, to keep the graph)."""
    if not bool(mask.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits[mask].float(), y[mask])


def objective(
    logits: torch.Tensor, y: torch.Tensor, occ: torch.Tensor, loss_on: str
) -> torch.Tensor:
    """Training loss: all positions, or only in-context ones (occurrence ≥ 2)."""
    if loss_on == "all":
        return F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())
    return _ce(logits, y, occ >= 2)


def _acc(logits: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> float:
    if not bool(mask.any()):
        return float("nan")
    return float((logits.argmax(-1)[mask] == y[mask]).float().mean())


def memory_probes(model: nn.Module, cfg: BirthConfig, language: BigramLanguage) -> dict[str, float]:
    """The three memory probes of the simplified model (NaN where the matrix does not exist).

    W_O² reads over the training output tokens (through the final linear map when present),
    W_K² over the triggers (fixed triggers) or all tokens (random triggers), W_K¹ over all
    positions. The full transformer has W_Q and layer norms that these probes do not model:
    all three are NaN for it, and for a 1-layer simplified model only W_K¹ is defined.
    """
    out = {"probe_wo2": math.nan, "probe_wk2": math.nan, "probe_wk1": math.nan}
    if not isinstance(model, SimplifiedTransformer):
        return out
    emb = model.embed.weight
    l1 = model.layers[0]
    out["probe_wk1"] = probe_wk1(model.pos, l1.wk.weight)
    if len(model.layers) >= 2:
        l2 = model.layers[1]
        train_pool, _ = output_pools(cfg)
        ffn = None if model.ffn is None else model.ffn.weight
        out["probe_wo2"] = probe_wo2(
            emb, l2.wv.weight, l2.wo.weight, model.unembed.weight, train_pool, ffn
        )
        keys = (
            language.most_frequent(cfg.n_triggers)
            if cfg.fixed_triggers
            else np.arange(language.n_vocab)
        )
        out["probe_wk2"] = probe_wk2(emb, l1.wv.weight, l1.wo.weight, l2.wk.weight, keys)
    return out


def _head_max(fn: Callable[..., float], attn: torch.Tensor, *args: Any) -> float:
    """Largest value of an attention probe over heads; attn is (B, H, T, T)."""
    a = attn.detach().to("cpu", torch.float64).numpy()
    vals = [fn(a[:, h], *args) for h in range(a.shape[1])]
    return math.nan if all(np.isnan(vals)) else float(np.nanmax(vals))


class Evaluator:
    """Fixed test and OOD batches (on the device) and the metrics computed on them."""

    def __init__(
        self,
        cfg: BirthConfig,
        language: BigramLanguage,
        test: Batch,
        ood: Batch | None,
        device: torch.device,
    ) -> None:
        self.cfg, self.language, self.test = cfg, language, test
        self.x, self.y, self.occ = _tensors(test, device)
        self.ood = None if ood is None else _tensors(ood, device)
        self.targets = induction_targets(test.inputs)
        self.incontext = test.occurrence >= 2

    @torch.no_grad()
    def __call__(self, model: nn.Module) -> dict[str, float]:
        """Test losses and accuracies, OOD accuracy, attention probes and memory probes."""
        y, occ = self.y, self.occ
        logits, attn = model(self.x, need_weights=True)
        bigram, incontext = occ == 0, occ >= 2
        res = {
            "loss_bigram": _ce(logits, y, bigram).item() if bool(bigram.any()) else math.nan,
            "loss_head": _ce(logits, y, incontext).item() if bool(incontext.any()) else math.nan,
            "acc_incontext": _acc(logits, y, incontext),
            "acc_incontext_ood": math.nan,
            "attn_prev_token": _head_max(previous_token_mass, attn[0]),
            "attn_induction": math.nan,
            "attn_induction_all": math.nan,
        }
        if len(attn) >= 2:
            inputs = self.test.inputs
            res["attn_induction"] = _head_max(
                induction_mass, attn[1], inputs, self.incontext, self.targets
            )
            res["attn_induction_all"] = _head_max(
                induction_mass, attn[1], inputs, None, self.targets
            )
        if self.ood is not None:
            xo, yo, occo = self.ood
            res["acc_incontext_ood"] = _acc(model(xo)[0], yo, occo >= 2)
        res.update(memory_probes(model, self.cfg, self.language))
        return res


def make_optimizer(params: list[nn.Parameter], cfg: BirthConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    return torch.optim.AdamW(
        params, lr=cfg.lr, betas=(0.9, 0.95), eps=1e-8, weight_decay=cfg.weight_decay
    )


def train_on_language(
    language: BigramLanguage,
    cfg: BirthConfig,
    device: str = "cpu",
    attrs: dict[str, Any] | None = None,
) -> tuple[xr.Dataset, xr.Dataset]:
    """Train one variant on a prepared language; see :func:`train_variant`."""
    dev = resolve_device(device)
    model = build_model(cfg).to(dev)
    schedule = FreezeSchedule(model, cfg.freeze_until)
    optimizer = make_optimizer(list(schedule.params.values()), cfg)
    test = sample_batch(language, cfg, cfg.seed, 0, "test")
    ood = sample_batch(language, cfg, cfg.seed, 0, "ood") if cfg.ood_fraction > 0 else None
    evaluate = Evaluator(cfg, language, test, ood, dev)

    rows: list[dict[str, float]] = []
    iterations: list[int] = []
    for it in range(cfg.n_iterations + 1):
        schedule.apply(it)
        x, y, occ = _tensors(sample_batch(language, cfg, cfg.seed, it, "train"), dev)
        record = it % cfg.eval_every == 0 or it == cfg.n_iterations
        if it == cfg.n_iterations:
            with torch.no_grad():
                loss = objective(model(x)[0], y, occ, cfg.loss_on)
        else:
            loss = objective(model(x)[0], y, occ, cfg.loss_on)
        if record:
            row = {"loss": loss.item()}
            row.update(evaluate(model))
            rows.append(row)
            iterations.append(it)
        if it == cfg.n_iterations:
            break
        if not math.isfinite(loss.item()):
            raise FloatingPointError(
                f"variant {cfg.name!r}: training loss is {float(loss)} at iteration {it}; "
                f"lower lr (now {cfg.lr})"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    train_pool, ood_pool = output_pools(cfg)
    base_attrs = provenance(
        params=cfg.to_dict(),
        variant=cfg.name,
        arch=cfg.arch,
        n_layers=cfg.n_layers,
        fixed_triggers=cfg.fixed_triggers,
        vocabulary=language.chars,
        train_output_tokens=[int(i) for i in train_pool],
        ood_output_tokens=[int(i) for i in ood_pool],
        device=str(dev),
        **(attrs or {}),
    )
    it_coord = xr.DataArray(
        np.array(iterations, dtype=np.int64),
        dims="iteration",
        attrs={"long_name": "optimizer updates done", "units": "1"},
    )
    metrics = xr.Dataset(
        {
            name: xr.DataArray(
                np.array([r[name] for r in rows], dtype=np.float64),
                dims="iteration",
                attrs={"long_name": ln, "units": units},
            )
            for name, (ln, units) in METRICS.items()
        },
        coords={"iteration": it_coord},
        attrs=base_attrs,
    )
    return metrics, attention_maps(model, cfg, language, test, dev, base_attrs)


@torch.no_grad()
def attention_maps(
    model: nn.Module,
    cfg: BirthConfig,
    language: BigramLanguage,
    test: Batch,
    device: torch.device,
    attrs: dict[str, Any] | None = None,
) -> xr.Dataset:
    """Attention of every layer (mean over heads) on the first test sequence, with its tokens."""
    x, _, _ = _tensors(test, device)
    _, attn = model(x[:1], need_weights=True)
    maps = np.stack([a[0].mean(0).to("cpu", torch.float64).numpy() for a in attn])
    t = cfg.seq_len
    inputs, occ = test.inputs[0], test.occurrence[0]
    pos = np.arange(t, dtype=np.int64)
    return xr.Dataset(
        {
            "attention": (
                ("layer", "query", "key"),
                maps.astype(np.float32),
                {"long_name": "attention weight (mean over heads)", "units": "1"},
            ),
            "token_id": ("position", inputs, {"long_name": "input token id", "units": "1"}),
            "target_id": (
                "position",
                test.targets[0],
                {"long_name": "target token id", "units": "1"},
            ),
            "occurrence": (
                "position",
                occ,
                {"long_name": "trigger occurrence count (0: not a trigger)", "units": "1"},
            ),
            "is_trigger": (
                "position",
                (occ > 0).astype(np.int8),
                {"long_name": "input token is a trigger of this sequence", "units": "1"},
            ),
            "trigger_token": (
                "trigger",
                test.triggers[0],
                {"long_name": "trigger token id", "units": "1"},
            ),
            "trigger_output": (
                "trigger",
                test.outputs[0],
                {"long_name": "output token id of the trigger", "units": "1"},
            ),
        },
        coords={
            "layer": ("layer", np.arange(1, len(attn) + 1), {"long_name": "layer", "units": "1"}),
            "query": ("query", pos, {"long_name": "query position", "units": "1"}),
            "key": ("key", pos, {"long_name": "key position", "units": "1"}),
            "position": ("position", pos, {"long_name": "position", "units": "1"}),
            "trigger": (
                "trigger",
                np.arange(cfg.n_triggers),
                {"long_name": "trigger index", "units": "1"},
            ),
        },
        attrs={**(attrs or {}), "text": language.decode(inputs)},
    )


def train_variant(
    documents: list[str], cfg: BirthConfig, device: str = "cpu"
) -> tuple[xr.Dataset, xr.Dataset]:
    """Train one variant on the bigram-trigger language of ``documents``.

    Returns (metrics over ``iteration``, attention maps of the final model on one test
    sequence). ``device``: ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when available).
    """
    language = make_language(documents, cfg.n_vocab)
    return train_on_language(
        language, cfg, device, attrs={"documents_sha256": content_sha256(documents)}
    )
