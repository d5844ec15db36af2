"""Checkpoint labels: the training step (and tokens seen) a label says, and the order of a run.

One parser for every layout a training run is saved in (no torch, no xarray import):

| layout | label | step | tokens seen |
|---|---|---|---|
| this workflow, Pythia | ``step143000`` | 143000 | |
| OLMo | ``step1000-tokens4B``, ``step20-tokens84M`` | 1000, 20 | 4·10⁹, 84·10⁶ |
| Hugging Face Trainer | ``checkpoint-500`` | 500 | |
| DeepSpeed | ``global_step500`` | 500 | |
| Megatron-LM | ``iter_0001000`` | 1000 | |
| a bare integer | ``500`` | 500 | |

Any other label (``final``, ``main``, ``best``) has no step; the config can give it one
(``steps`` or ``revisions`` as a mapping label → step), or a local checkpoint's
``trainer_state.json`` (``global_step``). Checkpoints are ordered by step; those without one come
after the numbered ones, in the order listed, with a warning naming them, and are never the last
checkpoint while numbered ones exist (:func:`last_checkpoint`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# suffixes of OLMo's token counts
TOKEN_UNITS = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "G": 10**9, "T": 10**12}
LABEL = re.compile(
    r"^(?:(?:step|global_step|checkpoint|iter|iteration)[-_]?)?(?P<step>\d+)"
    r"(?:[-_]tokens(?P<tokens>\d+(?:\.\d+)?)(?P<unit>[KMBGT]?))?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint of a run: its label as its maker wrote it, its step and tokens seen."""

    label: str
    step: int | None = None
    tokens: int | None = None

    @classmethod
    def parse(cls, label: str, step: int | None = None) -> Checkpoint:
        """The checkpoint a label names; ``step`` (from the config) overrides the label's."""
        parsed_step, tokens = parse_label(label)
        return cls(str(label), parsed_step if step is None else int(step), tokens)

    @property
    def step_number(self) -> float:
        """The step as a float, NaN when unknown (the ``step_number`` coordinate's value)."""
        return math.nan if self.step is None else float(self.step)

    @property
    def tokens_seen(self) -> float:
        """Tokens seen as a float, NaN when the label does not say."""
        return math.nan if self.tokens is None else float(self.tokens)


def parse_label(label: str) -> tuple[int | None, int | None]:
    """(training step, tokens seen) a checkpoint label says; None for what it does not."""
    m = LABEL.match(str(label).strip())
    if m is None:
        return None, None
    tokens = None
    if m.group("tokens") is not None:
        tokens = round(float(m.group("tokens")) * TOKEN_UNITS[m.group("unit").upper()])
    return int(m.group("step")), tokens


def step_number(label: str) -> float:
    """The training step of a label ('checkpoint-500' -> 500.0); NaN when it says none."""
    return Checkpoint.parse(label).step_number


def as_checkpoints(steps: Iterable[str | Checkpoint | Mapping]) -> list[Checkpoint]:
    """Checkpoints from labels (parsed), Checkpoint objects or their dicts (from params)."""
    out = []
    for s in steps:
        if isinstance(s, Checkpoint):
            out.append(s)
        elif isinstance(s, Mapping):
            out.append(Checkpoint(str(s["label"]), s.get("step"), s.get("tokens")))
        else:
            out.append(Checkpoint.parse(s))
    return out


def order_checkpoints(
    labels: Sequence[str] | Mapping[str, int | None],
) -> tuple[list[Checkpoint], list[str]]:
    """Checkpoints ordered by step (labels with none after them, as listed) and the labels
    without a step. ``labels`` as a mapping gives steps the labels do not say."""
    given = dict(labels) if isinstance(labels, Mapping) else dict.fromkeys(labels)
    parsed = [Checkpoint.parse(str(label), step) for label, step in given.items()]
    numbered = sorted((c for c in parsed if c.step is not None), key=lambda c: c.step)
    unnumbered = [c for c in parsed if c.step is None]
    return numbered + unnumbered, [c.label for c in unnumbered]


def last_checkpoint(checkpoints: Sequence[Checkpoint]) -> Checkpoint:
    """The last checkpoint of a run (what "final" means: CKA to the final checkpoint, the
    tokenizer a model's own tokenizer is read from, the checkpoint planning reads): the one with
    the largest step, never a label without a step while numbered ones exist (``best``,
    ``main``, a ``final`` whose step is unknown); the last listed when none has a step. The
    config gives an unnumbered label a step (``steps``/``revisions`` as a mapping) to make it
    the last. ``checkpoints`` as :func:`order_checkpoints` returns them."""
    if not checkpoints:
        raise ValueError("no checkpoints")
    numbered = [c for c in checkpoints if c.step is not None]
    if not numbered:
        return checkpoints[-1]
    top = max(c.step for c in numbered)
    return [c for c in numbered if c.step == top][-1]


def last_label(labels: Sequence[str]) -> str:
    """:func:`last_checkpoint` of labels as they are written (steps the config gives a label
    are not known here: planning passes the last checkpoint it decided where it has it)."""
    return last_checkpoint(as_checkpoints(labels)).label


def unnumbered_warning(model: str, labels: Sequence[str], key: str) -> str:
    """The warning for checkpoints whose step is unknown (placed after the numbered ones)."""
    return (
        f"model {model!r}: checkpoint(s) {list(labels)} have no training step in their label "
        f"(labels understood: step143000, checkpoint-500, step1000-tokens4B, global_step500, "
        f"iter_0001000, 500); they are placed after the numbered checkpoints, in the order "
        f"listed, and shown by label on step axes. Give their steps with '{key}' as a mapping "
        "label -> step"
    )


def step_coords(checkpoints: Sequence[Checkpoint]) -> dict[str, tuple]:
    """xarray coordinates on ``step``: the labels, ``step_number`` and, where any label says
    it, ``tokens_seen`` (NaN where unknown)."""
    coords: dict[str, tuple] = {
        "step": ("step", [c.label for c in checkpoints]),
        "step_number": (
            "step",
            [c.step_number for c in checkpoints],
            {"long_name": "training step", "units": "steps"},
        ),
    }
    if any(c.tokens is not None for c in checkpoints):
        coords["tokens_seen"] = (
            "step",
            [c.tokens_seen for c in checkpoints],
            {"long_name": "tokens seen in training (from the checkpoint label)", "units": "tokens"},
        )
    return coords


def pythia_schedule(steps: int, n_linear: int = 4) -> list[int]:
    """Pythia's schedule scaled down: 0, 1, 2, 4, … up to steps/2, then evenly to the end."""
    points = {0}
    p = 1
    while p <= steps // 2:
        points.add(p)
        p *= 2
    last = max(points)
    points.update(round(last + (steps - last) * i / n_linear) for i in range(1, n_linear + 1))
    return sorted(points)


def checkpoint_steps(training: Mapping[str, Any]) -> list[int]:
    """Training steps at which a trained model is saved (its ``training`` section's schedule)."""
    ckpts = training["checkpoints"]
    if ckpts == "pythia":
        return pythia_schedule(training["steps"], training["n_linear_checkpoints"])
    return sorted(ckpts)
