"""Settings of one variant of the "Birth of a Transformer" study (torch-free)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal


class SettingsError(ValueError):
    """Settings of a variant that contradict each other; ``key`` is the setting named."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key, self.message = key, message


@dataclass(frozen=True)
class BirthConfig:
    """One variant: a filled ``birth.$defs.variant`` of the schema (types, ranges and defaults
    live there; each key is described there), built with ``repgeom.options.build`` or
    ``repgeom.workflow.config.options``, and its ``name``.

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

    Numbers are normalised (int settings to int, float ones to float, which must be finite:
    a JSON schema cannot say so, and its integer takes 2.0), and what ties settings together
    is checked here (:class:`SettingsError` naming the key).
    """

    name: str = field(default="", kw_only=True)  # its key in birth.variants: not a setting
    seed: int
    # data
    n_vocab: int
    seq_len: int
    n_triggers: int
    fixed_triggers: bool
    bigram_outputs: bool
    no_repeat: bool
    ood_fraction: float
    # model
    arch: Literal["simplified", "full"]
    n_layers: int
    d_model: int
    n_heads: int
    d_ff: int
    freeze_embeddings: bool
    freeze_output: bool
    final_ffn: bool
    # optimisation
    optimizer: Literal["adamw", "sgd"]
    lr: float
    momentum: float
    weight_decay: float
    batch_size: int
    n_iterations: int
    loss_on: Literal["all", "incontext"]
    freeze_until: dict[str, int]
    # evaluation
    eval_every: int
    eval_batch_size: int

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type == "float":
                if not math.isfinite(value):
                    raise SettingsError(f.name, f"{value!r} must be finite")
                object.__setattr__(self, f.name, float(value))
            elif f.type == "int":  # the schema's integer takes 2.0
                if value != int(value):
                    raise SettingsError(f.name, f"{value!r} must be an integer")
                object.__setattr__(self, f.name, int(value))
        object.__setattr__(self, "freeze_until", dict(self.freeze_until))
        if self.n_triggers >= self.n_vocab:
            raise SettingsError(
                "n_triggers", f"{self.n_triggers} must be less than n_vocab={self.n_vocab}"
            )
        if self.arch == "simplified" and self.n_layers not in (1, 2):
            raise SettingsError("n_layers", f"{self.n_layers} must be 1 or 2 for arch simplified")
        if self.arch == "simplified" and self.n_heads != 1:
            raise SettingsError("n_heads", f"{self.n_heads} must be 1 for arch simplified")
        if self.d_model % self.n_heads:
            raise SettingsError("n_heads", f"{self.n_heads} must divide d_model={self.d_model}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
