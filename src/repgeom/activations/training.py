"""Training small language models: AdamW, warmup + cosine decay, seeded checkpoints."""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr
from tqdm import tqdm
from transformers import PreTrainedModel

from repgeom.activations.models import objective
from repgeom.data.tokens import Windows
from repgeom.steps import checkpoint_steps


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of one training run: a model's ``training`` section (its defaults
    filled from the schema by the workflow; ``device`` and ``threads`` are the job's)."""

    steps: int
    batch_size: int
    lr: float
    min_lr_ratio: float
    warmup: int
    weight_decay: float
    grad_clip: float
    mask_prob: float
    eval_tokens: int
    checkpoints: str | tuple[int, ...]  # 'pythia' or the steps saved
    n_linear_checkpoints: int
    seed: int
    betas: tuple[float, float] = (0.9, 0.95)  # AdamW's, not configurable

    @property
    def saved_steps(self) -> list[int]:
        """The steps whose checkpoints are saved, from the schedule."""
        return checkpoint_steps(dataclasses.asdict(self))


def learning_rate(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to lr, then cosine decay to lr·min_lr_ratio at the last step."""
    if cfg.warmup and step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    span = max(1, cfg.steps - cfg.warmup)
    progress = min(1.0, (step - cfg.warmup) / span)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def mask_tokens(
    ids: torch.Tensor,
    valid: torch.Tensor,
    special: torch.Tensor,
    mask_id: int,
    vocab: int,
    prob: float,
    gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: choose prob of the non-special tokens; 80% [MASK], 10% random, 10% kept."""
    labels = ids.clone()
    candidates = valid & ~torch.isin(ids, special)
    chosen = (torch.rand(ids.shape, generator=gen) < prob) & candidates
    labels[~chosen] = -100
    roll = torch.rand(ids.shape, generator=gen)
    inputs = ids.clone()
    inputs[chosen & (roll < 0.8)] = mask_id
    rand_pos = chosen & (roll >= 0.8) & (roll < 0.9)
    inputs[rand_pos] = torch.randint(vocab, ids.shape, generator=gen)[rand_pos]
    return inputs, labels


class Batcher:
    """Makes model inputs and labels for the model's objective from token windows."""

    def __init__(
        self, model: PreTrainedModel, tokenizer_ids: dict[str, int | list[int]], cfg: TrainConfig
    ):
        self.kind = objective(model)
        self.cfg = cfg
        self.vocab = model.config.vocab_size
        self.special = torch.tensor(tokenizer_ids.get("special", []), dtype=torch.long)
        self.mask_id = tokenizer_ids.get("mask")
        if self.kind == "masked" and self.mask_id is None:
            raise ValueError("a masked-LM model needs a tokenizer with a mask token")

    def __call__(
        self, w: Windows, rows: np.ndarray, gen: torch.Generator
    ) -> dict[str, torch.Tensor]:
        ids = torch.from_numpy(w.ids[rows].astype(np.int64))
        lengths = torch.from_numpy(w.lengths[rows].astype(np.int64))
        valid = torch.arange(ids.shape[1])[None, :] < lengths[:, None]
        if self.kind == "causal":
            labels = ids.masked_fill(~valid, -100)
            inputs = ids
        else:
            inputs, labels = mask_tokens(
                ids, valid, self.special, int(self.mask_id), self.vocab, self.cfg.mask_prob, gen
            )
        return {"input_ids": inputs, "attention_mask": valid.long(), "labels": labels}


@torch.no_grad()
def evaluate(model: PreTrainedModel, batcher: Batcher, w: Windows, cfg: TrainConfig) -> float:
    """Mean cross-entropy (nats per predicted token) on eval windows; fixed masks for MLM."""
    model.eval()
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    n_rows = max(1, min(len(w.lengths), cfg.eval_tokens // max(1, int(w.lengths.max()))))
    total, count = 0.0, 0
    device = next(model.parameters()).device
    for start in range(0, n_rows, cfg.batch_size):
        batch = batcher(w, np.arange(start, min(n_rows, start + cfg.batch_size)), gen)
        batch = {k: v.to(device) for k, v in batch.items()}
        n = (
            int((batch["labels"][:, 1:] != -100).sum())
            if batcher.kind == "causal"
            else int((batch["labels"] != -100).sum())
        )
        if n == 0:
            continue
        loss = model(**batch).loss
        total += float(loss) * n
        count += n
    model.train()
    return total / max(count, 1)


def train(
    model: PreTrainedModel,
    train_windows: Windows,
    eval_windows: Windows,
    tokenizer_ids: dict[str, int | list[int]],
    cfg: TrainConfig,
    save: Callable[[int, PreTrainedModel], None],
    device: str = "cpu",
) -> xr.Dataset:
    """Train cfg.steps updates, calling save(step, model) at each checkpoint; returns the log."""
    if len(train_windows.lengths) == 0:
        raise ValueError("no training windows")
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model.to(device).train()
    batcher = Batcher(model, tokenizer_ids, cfg)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg.lr,
        betas=cfg.betas,
    )
    checkpoints = set(cfg.saved_steps)
    steps = np.arange(cfg.steps + 1)
    log = {k: np.full(cfg.steps + 1, np.nan) for k in ("train_loss", "eval_loss", "lr")}
    tokens_seen = np.zeros(cfg.steps + 1, dtype=np.int64)
    order = rng.permutation(len(train_windows.lengths))
    cursor, seen = 0, 0
    bar = tqdm(total=cfg.steps, file=sys.stderr, mininterval=5, desc="train")
    for step in range(cfg.steps + 1):
        if step in checkpoints:
            log["eval_loss"][step] = evaluate(model, batcher, eval_windows, cfg)
            save(step, model)
        tokens_seen[step] = seen
        if step == cfg.steps:
            break
        if cursor + cfg.batch_size > len(order):
            order, cursor = rng.permutation(len(train_windows.lengths)), 0
        rows = order[cursor : cursor + cfg.batch_size]
        cursor += cfg.batch_size
        batch = {k: v.to(device) for k, v in batcher(train_windows, rows, gen).items()}
        lr = learning_rate(step, cfg)
        for group in opt.param_groups:
            group["lr"] = lr
        loss = model(**batch).loss
        if not torch.isfinite(loss.detach()):
            raise FloatingPointError(
                f"training loss became {float(loss)} at step {step}; lower lr (now {cfg.lr})"
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        seen += int(batch["attention_mask"].sum())
        log["train_loss"][step + 1] = loss.item()
        log["lr"][step] = lr
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    bar.close()
    units = {"train_loss": "nats/token", "eval_loss": "nats/token", "lr": "1"}
    names = {
        "train_loss": "training loss of the batch that led to this step",
        "eval_loss": "cross-entropy on the eval split",
        "lr": "learning rate of the update from this step",
    }
    data = {k: ("step", v, {"long_name": names[k], "units": units[k]}) for k, v in log.items()}
    data["tokens_seen"] = (
        "step",
        tokens_seen,
        {"long_name": "training tokens seen", "units": "tokens"},
    )
    return xr.Dataset(data, coords={"step": steps})
