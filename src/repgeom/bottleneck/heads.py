"""Rank-restricted LM heads trained on frozen final representations (Godey et al. 2024, §5).

Setting: the language model is frozen. Its final representations h ∈ ℝᵈ (the input of the LM
head, i.e. after the final norm) and the next-token targets y are given. For every rank r in a
grid, a head W = A B with A ∈ ℝ^{V×r}, B ∈ ℝ^{r×d} (plus an optional bias b ∈ ℝ^V) is trained
to minimise the mean next-token cross-entropy −log softmax(W h + b)_y. A full-rank head
W ∈ ℝ^{V×d} is trained the same way as the reference for what the features allow; the model's
own head W₀ (and bias b₀ if any) is evaluated untouched as a second reference.

Soft-capping: a model whose logits are soft-capped (Gemma 2's final logit soft-cap c, see
:class:`repgeom.activations.architectures.Unembedding`) computes c · tanh((W₀ h + b₀) / c). Every
head here then does the same with its own W: logits c · tanh((A B h + b) / c), in training and
in evaluation. The rank restriction stays on W, the linear map the softmax bottleneck is about,
while each head's logits live in the model's own logit function, so the heads' losses are
comparable with the model's eval loss (the full-rank head initialised from W₀ is the model's
unembedding exactly). The dataset records the cap (``head_logit_softcapping``, 'none' without
one) and the logits' form (``head_logits``). Without a cap nothing changes.

Training details (all configurable, all heads identical except for their parameters):

- All heads see exactly the same batches in the same order: one pass over the stream trains the
  whole grid. Parameters are disjoint, so one AdamW over all of them is the same as one AdamW
  per head (AdamW is element-wise; no global gradient clipping is applied).
- Optimiser: AdamW(lr, betas, eps, weight_decay); weight decay applies to A, B and W, not to the
  bias. On A and B it penalises ‖A‖² + ‖B‖², whose minimum over factorisations of W is 2‖W‖_*.
- Learning-rate schedule: ``"cosine"`` (default) decays lr → 0 over the token budget with a
  linear warmup over the first ``warmup_fraction`` of it; ``"constant"`` keeps lr.
- Token budget: the number of training tokens seen. The batch callable is called again for
  another pass whenever its iterator is exhausted; incoming blocks of any size are re-cut into
  batches of ``batch_size`` rows (a pass boundary does not cut a batch) and shuffled within a
  buffer of ``shuffle_buffer`` rows with a seeded generator (host memory about
  3 · shuffle_buffer · d · 4 bytes). The last batch is truncated so that exactly ``token_budget``
  tokens are seen.
- Initialisation: ``"random"`` — each factor uniform in ±1/sqrt(fan_in) (PyTorch's Linear
  default), drawn from a generator seeded by (seed, rank) so a head does not depend on the rest of
  the grid; ``"svd"`` — from the truncated SVD of W₀ = U Σ Vᵀ: A = U_r Σ_r^{1/2},
  B = Σ_r^{1/2} V_rᵀ (the best rank-r approximation of W₀), the full-rank head from W₀ itself
  and the bias from b₀ (zeros otherwise).
- ``train_loss_final``: mean training loss over the last 5 % of updates (at least one update).
- Evaluation: eval loss = total cross-entropy / number of eval tokens (nats/token, accumulated
  in float64 over float32 logits); perplexity = exp(eval loss).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
import xarray as xr

from repgeom.activations.architectures import soft_cap
from repgeom.bottleneck.options import HeadTraining
from repgeom.runtime import resolve_device

Batches = Callable[[], Iterable[tuple[Any, Any]]]


def _generator(seed: int, *key: int) -> torch.Generator:
    state = np.random.SeedSequence([seed, *key]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def _uniform(shape: tuple[int, int], fan_in: int, gen: torch.Generator) -> torch.Tensor:
    bound = 1.0 / math.sqrt(fan_in)
    return (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1).mul_(bound).float()


class Head(torch.nn.Module):
    """Logits W h + b with W either a full (V, d) matrix or a product A (V, r) · B (r, d), then
    soft-capped as the model's are (c · tanh(z / c)) when ``softcap`` c is given."""

    def __init__(
        self,
        factors: Sequence[torch.Tensor],
        bias: torch.Tensor | None,
        softcap: float | None = None,
    ) -> None:
        super().__init__()
        self.factors = torch.nn.ParameterList([torch.nn.Parameter(f) for f in factors])
        self.bias = None if bias is None else torch.nn.Parameter(bias)
        self.softcap = softcap

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (n, V) of features (n, d)."""
        for f in reversed(self.factors):
            x = x @ f.T
        return soft_cap(x if self.bias is None else x + self.bias, self.softcap)

    @property
    def rank(self) -> int:
        """Inner dimension r (d for a full head)."""
        return self.factors[-1].shape[0]


def build_heads(
    vocab_size: int,
    hidden_size: int,
    ranks: Sequence[int],
    cfg: HeadTraining,
    model_head: np.ndarray | None = None,
    model_bias: np.ndarray | None = None,
    softcap: float | None = None,
) -> tuple[dict[int, Head], Head]:
    """Initialised rank-restricted heads {r: head} and the full-rank head, on the CPU, their
    logits soft-capped at ``softcap`` (the model's) when given."""
    v, d = vocab_size, hidden_size
    bias0 = None
    if cfg.bias:
        b = np.zeros(v) if model_bias is None or cfg.init == "random" else model_bias
        bias0 = torch.as_tensor(np.asarray(b, dtype=np.float32))
    heads: dict[int, Head] = {}
    if cfg.init == "svd":
        if model_head is None:
            raise ValueError("init='svd' needs the model's head W₀ (model_head); pass it")
        u, s, vt = np.linalg.svd(np.asarray(model_head, dtype=np.float64), full_matrices=False)
        for r in ranks:
            root = np.sqrt(s[:r])
            a = torch.from_numpy((u[:, :r] * root).astype(np.float32))
            bmat = torch.from_numpy((root[:, None] * vt[:r]).astype(np.float32))
            heads[r] = Head([a, bmat], None if bias0 is None else bias0.clone(), softcap)
        w = torch.from_numpy(np.asarray(model_head, dtype=np.float32).copy())
        full = Head([w], None if bias0 is None else bias0.clone(), softcap)
        return heads, full
    for r in ranks:
        gen = _generator(cfg.seed, 0, r)
        b_fac = _uniform((r, d), d, gen)
        a_fac = _uniform((v, r), r, gen)
        heads[r] = Head([a_fac, b_fac], None if bias0 is None else bias0.clone(), softcap)
    full = Head([_uniform((v, d), d, _generator(cfg.seed, 1, d))], bias0, softcap)
    return heads, full


def _as_batch(x: Any, y: Any, d: int, v: int) -> tuple[np.ndarray, np.ndarray]:
    xa = np.asarray(x, dtype=np.float32)
    ya = np.asarray(y)
    if xa.ndim != 2 or xa.shape[1] != d:
        raise ValueError(f"feature batch must have shape (n, {d}), got {xa.shape}")
    if ya.shape != (xa.shape[0],):
        raise ValueError(f"target batch must have shape ({xa.shape[0]},), got {ya.shape}")
    if not np.issubdtype(ya.dtype, np.integer):
        raise ValueError(f"targets must be integer token ids, got dtype {ya.dtype}")
    if not np.isfinite(xa).all():
        raise ValueError("feature batch holds NaN or infinite values")
    if ya.size and (ya.min() < 0 or ya.max() >= v):
        raise ValueError(f"target ids must lie in [0, {v}), got range [{ya.min()}, {ya.max()}]")
    return xa, ya.astype(np.int64)


def training_stream(
    batches: Batches, d: int, v: int, cfg: HeadTraining
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Batches of exactly batch_size rows (the last one truncated) totalling token_budget.

    Calls ``batches()`` again for every new pass; blocks are pooled until ``shuffle_buffer`` rows
    (at least one batch) are held, the pool is shuffled with a seeded generator and cut into
    batches; the rows left over stay in the pool, across pass boundaries.
    """
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 2]))
    fill = max(cfg.shuffle_buffer, cfg.batch_size)
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    held = 0
    remaining = cfg.token_budget
    while remaining > 0:
        got = 0
        for x, y in batches():
            xa, ya = _as_batch(x, y, d, v)
            got += len(ya)
            xs.append(xa)
            ys.append(ya)
            held += len(ya)
            if held < fill and held < remaining:
                continue
            bx, by = np.concatenate(xs), np.concatenate(ys)
            if cfg.shuffle_buffer:
                perm = rng.permutation(held)
                bx, by = bx[perm], by[perm]
            n_out = remaining if held >= remaining else held // cfg.batch_size * cfg.batch_size
            for s in range(0, n_out, cfg.batch_size):
                e = min(s + cfg.batch_size, n_out)
                yield bx[s:e], by[s:e]
            remaining -= n_out
            if remaining == 0:
                return
            xs, ys = [bx[n_out:]], [by[n_out:]]
            held -= n_out
        if got == 0:
            raise ValueError("the training batch callable yielded no tokens")


def _nll_sum(head: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(head(x), y, reduction="sum")


def train_heads(
    heads: dict[int, Head],
    full: Head,
    batches: Batches,
    cfg: HeadTraining,
    device: torch.device,
) -> tuple[dict[int, float], float, int]:
    """Train all heads in place on one shared stream; returns final train losses and updates."""
    v, d = full.factors[0].shape
    models = [*heads.values(), full]
    for m in models:
        m.to(device)
    decay = [f for m in models for f in m.factors]
    no_decay = [m.bias for m in models if m.bias is not None]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    losses = torch.zeros((cfg.n_updates, len(models)), dtype=torch.float64, device=device)
    update = 0
    for xb, yb in training_stream(batches, d, v, cfg):
        x = torch.from_numpy(xb).to(device, non_blocking=True)
        y = torch.from_numpy(yb).to(device, non_blocking=True)
        for g in opt.param_groups:
            g["lr"] = cfg.lr_at(update)
        opt.zero_grad(set_to_none=True)
        for j, m in enumerate(models):
            loss = _nll_sum(m, x, y) / len(yb)
            loss.backward()  # one head at a time: only one (batch, V) logit block alive
            losses[update, j] = loss.detach()
        opt.step()
        update += 1
    if update != cfg.n_updates:
        raise RuntimeError(f"made {update} updates, expected {cfg.n_updates}")
    tail = max(1, math.ceil(0.05 * update))
    final = losses[update - tail : update].mean(dim=0).cpu().numpy()
    if not np.isfinite(final).all():
        raise FloatingPointError(f"training loss diverged (NaN/inf); lower lr (now {cfg.lr})")
    return {r: float(final[j]) for j, r in enumerate(heads)}, float(final[-1]), update


@torch.no_grad()
def evaluate_heads(
    heads: Sequence[torch.nn.Module],
    eval_batches: Iterable[tuple[Any, Any]],
    d: int,
    v: int,
    device: torch.device,
) -> tuple[np.ndarray, int]:
    """Mean eval cross-entropy (nats/token) of each head over one pass of eval batches."""
    totals = torch.zeros(len(heads), dtype=torch.float64, device=device)
    n = 0
    for xb, yb in eval_batches:
        xa, ya = _as_batch(xb, yb, d, v)
        if not len(ya):
            continue
        x = torch.from_numpy(xa).to(device)
        y = torch.from_numpy(ya).to(device)
        for j, h in enumerate(heads):
            totals[j] += _nll_sum(h, x, y).double()
        n += len(ya)
    if n == 0:
        raise ValueError("the eval batches hold no tokens")
    return (totals / n).cpu().numpy(), n


def rank_restricted_heads(
    train_batches: Batches,
    eval_batches: Iterable[tuple[Any, Any]],
    vocab_size: int,
    hidden_size: int,
    cfg: HeadTraining,
    model_head: Any | None = None,
    model_bias: Any | None = None,
    device: str = "auto",
    attrs: dict[str, Any] | None = None,
    softcap: float | None = None,
) -> xr.Dataset:
    """Train and evaluate heads of every rank of ``cfg`` (:meth:`HeadTraining.ranks_for`) plus a
    full-rank head (see module doc).

    ``train_batches()`` must return a fresh iterable of (features (n, d) float32, targets (n,)
    int64) blocks on each call; ``eval_batches`` is iterated once. ``model_head`` is W₀ (V, d)
    and ``model_bias`` b₀ (V,), both optional (needed for init='svd' and the model-head
    reference); ``softcap`` the model's final logit soft-cap (``Unembedding.softcap``), applied
    to every head's logits. Returns a Dataset over ``rank`` with eval_loss, perplexity,
    train_loss_final and the scalars full_rank_loss, full_rank_perplexity,
    full_rank_train_loss_final and (when W₀ is given) model_head_loss, model_head_perplexity.
    """
    v, d = int(vocab_size), int(hidden_size)
    ranks = cfg.ranks_for(v, d)
    if softcap is not None and not softcap > 0:
        raise ValueError(f"softcap must be positive or None, got {softcap!r}")
    w0 = b0 = None
    if model_head is not None:
        from repgeom.bottleneck.spectrum import as_float64_matrix

        w0 = as_float64_matrix(model_head, "model_head")
        if w0.shape != (v, d):
            raise ValueError(f"model_head must have shape ({v}, {d}), got {w0.shape}")
    if model_bias is not None:
        b0 = np.asarray(
            model_bias.detach().float().cpu() if hasattr(model_bias, "detach") else model_bias,
            dtype=np.float64,
        )
        if b0.shape != (v,) or not np.isfinite(b0).all():
            raise ValueError(f"model_bias must be a finite ({v},) vector, got shape {b0.shape}")
    dev = resolve_device(device)
    heads, full = build_heads(v, d, ranks, cfg, w0, b0, softcap)
    final_train, full_train, n_updates = train_heads(heads, full, train_batches, cfg, dev)
    to_eval: list[torch.nn.Module] = [*heads.values(), full]
    if w0 is not None:
        ref = Head(
            [torch.from_numpy(w0.astype(np.float32))],
            None if b0 is None else torch.from_numpy(b0.astype(np.float32)),
            softcap,
        ).to(dev)
        to_eval.append(ref)
    for m in to_eval:
        m.eval()
    losses, n_eval = evaluate_heads(to_eval, eval_batches, d, v, dev)
    k = len(ranks)

    def var(values: Any, dims: Any, long_name: str, units: str) -> tuple:
        return (dims, values, {"long_name": long_name, "units": units})

    data = {
        "eval_loss": var(losses[:k], "rank", "eval cross-entropy of the rank-r head", "nat/token"),
        "perplexity": var(np.exp(losses[:k]), "rank", "eval perplexity of the rank-r head", "1"),
        "train_loss_final": var(
            np.array([final_train[r] for r in ranks]),
            "rank",
            "training cross-entropy of the rank-r head over the last 5% of updates",
            "nat/token",
        ),
        "full_rank_loss": var(
            float(losses[k]), (), "eval cross-entropy of the trained full-rank head", "nat/token"
        ),
        "full_rank_perplexity": var(
            float(np.exp(losses[k])), (), "eval perplexity of the trained full-rank head", "1"
        ),
        "full_rank_train_loss_final": var(
            full_train,
            (),
            "training cross-entropy of the full-rank head over the last 5% of updates",
            "nat/token",
        ),
    }
    if w0 is not None:
        data["model_head_loss"] = var(
            float(losses[k + 1]), (), "eval cross-entropy of the model's own head", "nat/token"
        )
        data["model_head_perplexity"] = var(
            float(np.exp(losses[k + 1])), (), "eval perplexity of the model's own head", "1"
        )
    settings = {  # the ranks are the rank coordinate
        k_: (list(v_) if isinstance(v_, tuple) else v_)
        for k_, v_ in asdict(cfg).items()
        if k_ != "ranks"
    }
    linear = "W h + b" if cfg.bias else "W h"
    logits_form = linear if softcap is None else f"c * tanh(({linear}) / c), c = {softcap:g}"
    return xr.Dataset(
        data,
        coords={"rank": ("rank", np.array(ranks), {"long_name": "head rank r", "units": "1"})},
        attrs={
            **{f"head_{k_}": v_ for k_, v_ in settings.items()},
            "head_bias": int(cfg.bias),
            "head_logit_softcapping": "none" if softcap is None else float(softcap),
            "head_logits": logits_form,
            "vocab_size": v,
            "hidden_size": d,
            "n_updates": n_updates,
            "n_train_tokens": cfg.token_budget,
            "n_eval_tokens": n_eval,
            "device": str(dev),
            **(attrs or {}),
        },
    )
