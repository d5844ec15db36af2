"""Typed options of the extraction job (torch-free, so planning code can read them too).

:class:`ExtractionOptions` is the config's ``extraction`` section as one job reads it, built
with ``repgeom.options.build`` from the section the workflow filled with the schema's defaults
(no field has a default here).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from repgeom.data.tokens import Windows, read_tokens, tokens_attrs


@dataclass(frozen=True)
class ExtractionOptions:
    """The config's ``extraction`` options of one job (its ``corpora`` and ``eval_loss`` are the
    planner's): which windows of a token store are extracted, in batches of ``batch_size``
    windows, by the model loaded in ``dtype`` on ``device``."""

    split: Literal["train", "eval"]
    max_tokens: int
    max_sentences: int
    batch_size: int
    device: str
    dtype: Literal["float32", "bfloat16", "float16"]

    def windows(self, tokens: str | Path) -> Windows:
        """The windows of the token store ``tokens`` that are extracted, from its ``split``: the
        first ``max_sentences`` rows of a corpus of one row per sentence (``windows:
        document``, the same count for every aligned corpus), else the first whole windows
        holding at most ``max_tokens`` tokens."""
        corpus = json.loads(tokens_attrs(tokens)["config"])["corpus"]
        if corpus["windows"] == "document":
            return read_tokens(tokens, self.split, None, self.max_sentences)
        return read_tokens(tokens, self.split, self.max_tokens)
