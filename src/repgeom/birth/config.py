"""Configuration of one variant of the "Birth of a Transformer" study, with validated defaults."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ARCHS = ("simplified", "full")
OPTIMIZERS = ("sgd", "adamw")
LOSS_ON = ("all", "incontext")


@dataclass(frozen=True)
class BirthConfig:
    """One variant: data, model, optimisation and evaluation settings.

    Data: ``n_vocab`` most frequent characters, sequences of ``seq_len`` predictions,
    ``n_triggers`` triggers (``fixed_triggers``: the most frequent characters, else drawn per
    sequence from the unigram), outputs uniform over the training pool or from the trigger's
    bigram row (``bigram_outputs``), never the trigger itself (``no_repeat``);
    ``ood_fraction`` of the tokens are held out as outputs for the OOD split.
    Model: ``arch`` "simplified" (the paper's model; ``final_ffn`` adds a trainable linear map
    before the output) or "full" (pre-LN, ``n_heads``, ReLU MLP ``d_ff``), ``n_layers``,
    ``d_model``, optional frozen token embeddings / output matrix.
    Optimisation: ``optimizer`` "adamw" or "sgd" (``momentum``), ``lr``, ``weight_decay``,
    ``batch_size``, ``n_iterations``, ``loss_on`` "all" positions or "incontext" ones only,
    ``freeze_until`` {parameter-name glob: iteration it becomes trainable}.
    Evaluation every ``eval_every`` updates on fixed batches of ``eval_batch_size`` sequences.

    Defaults are sized for a CPU (a variant in about 20–40 s on 2 cores); the paper's setting
    is d_model 256, batch_size 512, seq_len 256, SGD with momentum 0.9. AdamW is the default
    here because it needs fewer iterations at the small batch a CPU affords.
    """

    name: str = "simplified_fixed"
    seed: int = 0
    # data
    n_vocab: int = 65
    seq_len: int = 256
    n_triggers: int = 5
    fixed_triggers: bool = True
    bigram_outputs: bool = False
    no_repeat: bool = True
    ood_fraction: float = 0.25
    # model
    arch: str = "simplified"
    n_layers: int = 2
    d_model: int = 64
    n_heads: int = 1
    d_ff: int = 256
    freeze_embeddings: bool = False
    freeze_output: bool = False
    final_ffn: bool = True
    # optimisation
    optimizer: str = "adamw"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch_size: int = 32
    n_iterations: int = 500
    loss_on: str = "all"
    freeze_until: dict[str, int] = field(default_factory=dict)
    # evaluation
    eval_every: int = 10
    eval_batch_size: int = 32

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_INT_FIELDS = {f.name for f in dataclasses.fields(BirthConfig) if f.type == "int"}
_FLOAT_FIELDS = {f.name for f in dataclasses.fields(BirthConfig) if f.type == "float"}
_BOOL_FIELDS = {f.name for f in dataclasses.fields(BirthConfig) if f.type == "bool"}


def _check(cond: bool, key: str, value: Any, what: str) -> None:
    if not cond:
        raise ValueError(f"birth config: {key}={value!r} {what}")


def parse_config(cfg: dict[str, Any] | BirthConfig | None = None, **overrides: Any) -> BirthConfig:
    """A validated ``BirthConfig`` from a (partial) dict; missing keys take the defaults."""
    if isinstance(cfg, BirthConfig):
        cfg = cfg.to_dict()
    raw = dict(cfg or {})
    raw.update(overrides)
    known = {f.name for f in dataclasses.fields(BirthConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"birth config: unknown keys {unknown}; valid keys are {sorted(known)}")
    for key, value in raw.items():
        if key in _BOOL_FIELDS:
            _check(isinstance(value, bool), key, value, "must be true or false")
        elif key in _INT_FIELDS:
            _check(
                isinstance(value, int) and not isinstance(value, bool), key, value, "must be an int"
            )
        elif key in _FLOAT_FIELDS:
            _check(
                isinstance(value, int | float) and not isinstance(value, bool),
                key,
                value,
                "must be a number",
            )
            _check(math.isfinite(value), key, value, "must be finite")
            raw[key] = float(value)
    fu = raw.get("freeze_until", {})
    _check(isinstance(fu, dict), "freeze_until", fu, "must map parameter patterns to iterations")
    for pat, it in fu.items():
        _check(
            isinstance(pat, str) and isinstance(it, int) and not isinstance(it, bool) and it >= 0,
            f"freeze_until[{pat!r}]",
            it,
            "must be a non-negative int iteration keyed by a parameter-name pattern",
        )
    c = BirthConfig(**{**raw, "freeze_until": dict(fu)})
    _check(isinstance(c.name, str) and c.name != "", "name", c.name, "must be a non-empty string")
    _check(c.seed >= 0, "seed", c.seed, "must be non-negative")
    _check(c.n_vocab >= 2, "n_vocab", c.n_vocab, "must be at least 2")
    _check(c.seq_len >= 2, "seq_len", c.seq_len, "must be at least 2")
    _check(0 < c.n_triggers < c.n_vocab, "n_triggers", c.n_triggers, "must be in [1, n_vocab)")
    _check(0.0 <= c.ood_fraction < 1.0, "ood_fraction", c.ood_fraction, "must be in [0, 1)")
    _check(c.arch in ARCHS, "arch", c.arch, f"must be one of {ARCHS}")
    if c.arch == "simplified":
        _check(c.n_layers in (1, 2), "n_layers", c.n_layers, "must be 1 or 2 for arch simplified")
        _check(c.n_heads == 1, "n_heads", c.n_heads, "must be 1 for arch simplified")
    else:
        _check(c.n_layers >= 1, "n_layers", c.n_layers, "must be at least 1")
        _check(c.n_heads >= 1, "n_heads", c.n_heads, "must be at least 1")
        _check(c.d_model % c.n_heads == 0, "n_heads", c.n_heads, f"must divide d_model={c.d_model}")
        _check(c.d_ff >= 1, "d_ff", c.d_ff, "must be at least 1")
    _check(c.d_model >= 1, "d_model", c.d_model, "must be at least 1")
    _check(c.optimizer in OPTIMIZERS, "optimizer", c.optimizer, f"must be one of {OPTIMIZERS}")
    _check(c.lr > 0, "lr", c.lr, "must be positive")
    _check(0.0 <= c.momentum < 1.0, "momentum", c.momentum, "must be in [0, 1)")
    _check(c.weight_decay >= 0, "weight_decay", c.weight_decay, "must be non-negative")
    _check(c.batch_size >= 1, "batch_size", c.batch_size, "must be at least 1")
    _check(c.n_iterations >= 1, "n_iterations", c.n_iterations, "must be at least 1")
    _check(c.loss_on in LOSS_ON, "loss_on", c.loss_on, f"must be one of {LOSS_ON}")
    _check(c.eval_every >= 1, "eval_every", c.eval_every, "must be at least 1")
    _check(c.eval_batch_size >= 1, "eval_batch_size", c.eval_batch_size, "must be at least 1")
    return c


#: The default study: variant name → overrides of the ``BirthConfig`` defaults.
DEFAULT_VARIANTS: dict[str, dict[str, Any]] = {
    "simplified_fixed": {},
    "simplified_random": {"fixed_triggers": False},
    "simplified_frozen": {"freeze_embeddings": True, "freeze_output": True},
    "one_layer": {"arch": "full", "n_layers": 1},
    "full": {"arch": "full", "n_layers": 2},
}


def default_study(**common: Any) -> dict[str, BirthConfig]:
    """The default variants, each with ``common`` overrides applied (e.g. ``seed``)."""
    return {
        name: parse_config({**over, **common, "name": name})
        for name, over in DEFAULT_VARIANTS.items()
    }


def study_variants(
    section: Mapping[str, Any], corpora: Mapping[str, Any], corpus_named: bool
) -> dict[str, dict[str, Any]]:
    """Resolved settings of every variant of the study, or {} when its corpus is not a corpus
    of the config (an error naming the key when the config named that corpus itself:
    ``corpus_named``). ``common`` overrides every variant; ConfigError names the variant."""
    from repgeom.workflow.config import ConfigError

    if section["corpus"] not in corpora:
        if corpus_named:
            raise ConfigError(
                f"config key 'birth.corpus': {section['corpus']!r} is not a corpus of this config"
            )
        return {}
    variants = DEFAULT_VARIANTS if section["variants"] is None else section["variants"]
    out = {}
    for name, overrides in variants.items():
        try:
            out[name] = parse_config({**overrides, **section["common"], "name": name}).to_dict()
        except ValueError as err:
            raise ConfigError(f"config key 'birth.variants.{name}': {err}") from None
    return out
