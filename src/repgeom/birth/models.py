"""Models of the study: the paper's simplified 2-layer transformer, a full pre-LN transformer."""

from __future__ import annotations

import fnmatch
import math

import torch
from torch import nn
from torch.nn import functional as F

from repgeom.birth.config import BirthConfig


def _normal_(weight: torch.Tensor, std: float, gen: torch.Generator) -> None:
    with torch.no_grad():
        weight.copy_(torch.randn(weight.shape, generator=gen) * std)


def causal_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, need_weights: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Softmax(q kᵀ / √d_head) v with a causal mask; q, k, v are (B, H, T, d_head)."""
    if not need_weights:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True), None
    t = q.shape[-2]
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    mask = torch.ones(t, t, dtype=torch.bool, device=q.device).triu(1)
    probs = scores.masked_fill(mask, float("-inf")).softmax(dim=-1)
    return probs @ v, probs


class SimplifiedLayer(nn.Module):
    """One head with W_Q = identity: h ↦ W_O · Attn(h, W_K h, W_V h)."""

    def __init__(self, d: int, gen: torch.Generator, train_wo: bool) -> None:
        super().__init__()
        self.wk = nn.Linear(d, d, bias=False)
        self.wv = nn.Linear(d, d, bias=False)
        self.wo = nn.Linear(d, d, bias=False)
        for lin in (self.wk, self.wv, self.wo):
            _normal_(lin.weight, 1.0 / math.sqrt(d), gen)
        self.wv.weight.requires_grad_(False)
        self.wo.weight.requires_grad_(train_wo)

    def forward(
        self, h: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        q, k, v = h[:, None], self.wk(h)[:, None], self.wv(h)[:, None]
        out, probs = causal_attention(q, k, v, need_weights)
        return self.wo(out[:, 0]), probs


class SimplifiedTransformer(nn.Module):
    """The simplified model of Bietti et al. (2023, §4.2).

    Residual stream x_t = e(z_t) + p_t with random Gaussian token embeddings e (entries
    N(0, 1)) and frozen random positional embeddings p (buffer ``pos``, entries N(0, 1)).
    Each layer adds W_O · Attn(x; W_Q = I, W_K, W_V) with one head, no layer norm and causal
    attention scaled by 1/√d. W_V is frozen at its random init (entries N(0, 1/d)) in both
    layers, and W_O in layer 1; the trainable matrices are W_K¹, W_K², W_O² (entries
    N(0, 1/d) at init), the optional final linear feed-forward map (``final_ffn``:
    x ↦ x + W_F x) and, unless frozen by the config, the token embeddings and the output matrix
    W_U (logits = W_U x, entries N(0, 1/d²) so that the initial logits are O(1) and the
    initial loss is close to log V). With ``n_layers = 1`` only layer 1 is present and its W_O
    is trainable.
    """

    def __init__(self, cfg: BirthConfig) -> None:
        super().__init__()
        d, v, t = cfg.d_model, cfg.n_vocab, cfg.seq_len
        gen = torch.Generator().manual_seed(cfg.seed)
        self.d_model = d
        self.embed = nn.Embedding(v, d)
        _normal_(self.embed.weight, 1.0, gen)
        self.embed.weight.requires_grad_(not cfg.freeze_embeddings)
        self.register_buffer("pos", torch.randn(t, d, generator=gen))
        self.layers = nn.ModuleList(
            SimplifiedLayer(d, gen, train_wo=(i == cfg.n_layers - 1 and i > 0) or cfg.n_layers == 1)
            for i in range(cfg.n_layers)
        )
        self.ffn = nn.Linear(d, d, bias=False) if cfg.final_ffn else None
        if self.ffn is not None:
            _normal_(self.ffn.weight, 1.0 / math.sqrt(d), gen)
        self.unembed = nn.Linear(d, v, bias=False)
        _normal_(self.unembed.weight, 1.0 / d, gen)
        self.unembed.weight.requires_grad_(not cfg.freeze_output)

    def forward(
        self, tokens: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits (B, T, V) and, if asked, each layer's attention (B, 1, T, T)."""
        t = tokens.shape[1]
        h = self.embed(tokens) + self.pos[:t]
        attn = []
        for layer in self.layers:
            out, probs = layer(h, need_weights)
            h = h + out
            if probs is not None:
                attn.append(probs)
        if self.ffn is not None:
            h = h + self.ffn(h)
        return self.unembed(h), attn


class FullLayer(nn.Module):
    """Pre-LN block: x + Attn(LN x), then + MLP(LN ·) with a ReLU hidden layer."""

    def __init__(self, d: int, n_heads: int, d_ff: int, gen: torch.Generator) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.attn_norm = nn.LayerNorm(d)
        self.wq = nn.Linear(d, d, bias=False)
        self.wk = nn.Linear(d, d, bias=False)
        self.wv = nn.Linear(d, d, bias=False)
        self.wo = nn.Linear(d, d, bias=False)
        self.mlp_norm = nn.LayerNorm(d)
        self.mlp = nn.Sequential(
            nn.Linear(d, d_ff, bias=False), nn.ReLU(), nn.Linear(d_ff, d, bias=False)
        )
        for lin in (self.wq, self.wk, self.wv, self.wo, self.mlp[0]):
            _normal_(lin.weight, 1.0 / math.sqrt(lin.in_features), gen)
        _normal_(self.mlp[2].weight, 1.0 / math.sqrt(d_ff), gen)

    def forward(
        self, x: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        b, t, d = x.shape
        h = self.attn_norm(x)

        def heads(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2)

        out, probs = causal_attention(
            heads(self.wq(h)), heads(self.wk(h)), heads(self.wv(h)), need_weights
        )
        x = x + self.wo(out.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.mlp_norm(x)), probs


class FullTransformer(nn.Module):
    """A standard pre-LN transformer, all weights trainable (learned positional embeddings).

    Token embeddings N(0, 1), positional embeddings N(0, 1) (trainable), linear maps
    N(0, 1/fan_in), final LayerNorm before the output matrix (entries N(0, 1/d²)), one head per
    layer unless ``n_heads`` says otherwise, ReLU MLP of width ``d_ff``. ``freeze_embeddings`` and
    ``freeze_output`` apply to the token embeddings and output matrix as in the simplified
    model.
    """

    def __init__(self, cfg: BirthConfig) -> None:
        super().__init__()
        d, v, t = cfg.d_model, cfg.n_vocab, cfg.seq_len
        gen = torch.Generator().manual_seed(cfg.seed)
        self.d_model = d
        self.embed = nn.Embedding(v, d)
        _normal_(self.embed.weight, 1.0, gen)
        self.embed.weight.requires_grad_(not cfg.freeze_embeddings)
        self.pos_embed = nn.Embedding(t, d)
        _normal_(self.pos_embed.weight, 1.0, gen)
        self.layers = nn.ModuleList(
            FullLayer(d, cfg.n_heads, cfg.d_ff, gen) for _ in range(cfg.n_layers)
        )
        self.final_norm = nn.LayerNorm(d)
        self.unembed = nn.Linear(d, v, bias=False)
        _normal_(self.unembed.weight, 1.0 / d, gen)
        self.unembed.weight.requires_grad_(not cfg.freeze_output)

    def forward(
        self, tokens: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits (B, T, V) and, if asked, each layer's attention (B, H, T, T)."""
        t = tokens.shape[1]
        h = self.embed(tokens) + self.pos_embed.weight[:t]
        attn = []
        for layer in self.layers:
            h, probs = layer(h, need_weights)
            if probs is not None:
                attn.append(probs)
        return self.unembed(self.final_norm(h)), attn


def build_model(cfg: BirthConfig) -> nn.Module:
    """The model of ``cfg.arch``, initialised deterministically from ``cfg.seed`` (on CPU)."""
    if cfg.arch == "simplified":
        return SimplifiedTransformer(cfg)
    if cfg.arch == "full":
        return FullTransformer(cfg)
    raise ValueError(f"arch={cfg.arch!r} must be 'simplified' or 'full'")


class FreezeSchedule:
    """``freeze_until``: parameter-name glob pattern → iteration at which it becomes trainable.

    Only parameters the architecture trains can be scheduled (W_V of the simplified model
    stays frozen whatever the schedule says); a pattern that matches none of them is an error.
    """

    def __init__(self, model: nn.Module, freeze_until: dict[str, int]) -> None:
        trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
        self.unfreeze_at: dict[str, int] = {}
        for pattern, it in freeze_until.items():
            names = fnmatch.filter(trainable, pattern)
            if not names:
                raise ValueError(
                    f"freeze_until pattern {pattern!r} matches no trainable parameter; "
                    f"trainable parameters are {sorted(trainable)}"
                )
            for n in names:
                self.unfreeze_at[n] = max(it, self.unfreeze_at.get(n, 0))
        self.params = trainable

    def apply(self, iteration: int) -> None:
        """Set ``requires_grad`` of every scheduled parameter for the update at ``iteration``."""
        for n, it in self.unfreeze_at.items():
            self.params[n].requires_grad_(iteration >= it)
