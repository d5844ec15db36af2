"""Typed options: one config section as a frozen dataclass.

The library never reads the schema. The workflow fills a section with the schema's defaults
(``repgeom.workflow.config.options``) and the library takes the dataclass :func:`build` makes of
it, so every section reaches the code the same way and a default lives only in the schema.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def _frozen(value: Any) -> Any:
    """Lists as tuples (recursively), so an options object is immutable and hashable."""
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value


def build(cls: type[T], section: Mapping[str, Any], where: str = "", extra: bool = False) -> T:
    """``cls`` (a dataclass) from a config section holding every field without a default;
    ``extra``: the section may hold keys the dataclass does not take (else an error naming them,
    as ``where``, the section's key path)."""
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    label = where or cls.__name__
    unknown = sorted(set(section) - names)
    if unknown and not extra:
        raise ValueError(f"unknown option(s) {unknown} in {label}; known: {sorted(names)}")
    required = {
        f.name
        for f in dataclasses.fields(cls)
        if f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    missing = sorted(required - set(section))
    if missing:
        raise ValueError(f"{label} lacks option(s) {missing}")
    return cls(**{k: _frozen(v) for k, v in section.items() if k in names})
