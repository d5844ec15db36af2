"""Every property of the config schemas has a description (README: the schema documents every
key).

The walk visits every schema object of ``config/schema.yaml`` and ``config/schema/*.yaml``: the
values of ``properties`` at any depth, and the subschemas under ``$defs``, ``items``,
``prefixItems``, ``additionalProperties``, ``patternProperties``, ``propertyNames``,
``allOf``/``anyOf``/``oneOf``, ``not`` and ``if``/``then``/``else``. Each property must carry a
non-empty string ``description`` of its own (a ``$ref`` property included: the description
goes next to the ``$ref``).

The one exception is a conditional block. A property directly under ``if``, ``then`` or ``else``
(the block at any depth of ``allOf``/``anyOf``/``oneOf`` below the object) re-states a key of
the object it conditions: it selects the kind (``if: {properties: {kind: {const: text}}}``) or
sets a per-kind default (``then: {properties: {encoding: {default: utf-8}}}``). It is skipped
when its name is a *described* property of that object's own ``properties``; a name the object
does not have, or has without a description, is reported like any other property. A property of
a combinator branch outside ``if``/``then``/``else`` (``allOf: [{properties: ...}]``) is never
skipped; nor is anything nested inside a skipped property.

A failure lists every key path that lacks a description, per file, e.g.
``schema.yaml: metrics.geometry.id_repeats`` (``$defs.<name>`` for a definition, ``[]`` for
``items``, ``*`` for ``additionalProperties``, ``allOf[i].then`` for a branch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from repgeom.workflow.config import load_yaml

CONFIG = Path(__file__).resolve().parents[1] / "config"
SCHEMAS = [CONFIG / "schema.yaml", *sorted((CONFIG / "schema").glob("*.yaml"))]

_CONDITIONAL = ("if", "then", "else")
_COMBINATORS = ("allOf", "anyOf", "oneOf")
# subschemas that describe other values than the object's keys: (keyword, path tag)
_SUBSCHEMAS = {
    "items": "[]",
    "prefixItems": "[]",
    "additionalProperties": "*",
    "propertyNames": "<name>",
    "not": "not",
    "contains": "<item>",
}


def _described(schema: Any) -> bool:
    if not isinstance(schema, dict):
        return False
    text = schema.get("description")
    return isinstance(text, str) and bool(text.strip())


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def missing_descriptions(
    node: Any,
    path: str = "",
    skip: frozenset[str] = frozenset(),
    conditioned: frozenset[str] = frozenset(),
) -> list[str]:
    """Key paths under ``node`` whose property lacks a description.

    ``skip``: the names a property of ``node`` itself may lack a description under (``node`` is
    an ``if``/``then``/``else`` block); ``conditioned``: the described property names of the
    object ``node`` is a combinator branch of, which its own conditional blocks may re-state."""
    if not isinstance(node, dict):
        return []
    properties = node.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    out = _missing_in_properties(properties, path, skip)
    # what the conditional blocks of this object (and of its combinator branches) may re-state
    own = conditioned | skip | {name for name, sub in properties.items() if _described(sub)}
    out += _missing_in_named(node, path, own)
    out += _missing_in_values(node, path)
    out += _missing_in_branches(node, path, own)
    return out


def _missing_in_properties(properties: dict, path: str, skip: frozenset[str]) -> list[str]:
    """The properties without a description (but those in ``skip``), and what each holds."""
    out: list[str] = []
    for name, sub in properties.items():
        key = _join(path, str(name))
        if not _described(sub) and name not in skip:
            out.append(key)
        out += missing_descriptions(sub, key)
    return out


def _missing_in_named(node: dict, path: str, own: frozenset[str]) -> list[str]:
    """Under the subschemas of ``$defs``, ``patternProperties`` and ``dependentSchemas``."""
    out: list[str] = []
    for name, sub in (node.get("$defs") or {}).items():
        out += missing_descriptions(sub, _join(path, f"$defs.{name}"))
    for name, sub in (node.get("patternProperties") or {}).items():
        out += missing_descriptions(sub, _join(path, f"<{name}>"))
    for name, sub in (node.get("dependentSchemas") or {}).items():
        out += missing_descriptions(sub, _join(path, f"<if {name}>"), conditioned=own)
    return out


def _missing_in_values(node: dict, path: str) -> list[str]:
    """Under the subschemas of other values than the object's keys (:data:`_SUBSCHEMAS`)."""
    out: list[str] = []
    for word, tag in _SUBSCHEMAS.items():
        subs = node.get(word)
        for sub in subs if isinstance(subs, list) else [subs]:
            out += missing_descriptions(sub, path + tag if tag == "[]" else _join(path, tag))
    return out


def _missing_in_branches(node: dict, path: str, own: frozenset[str]) -> list[str]:
    """Under the combinator branches and the ``if``/``then``/``else`` blocks, which may
    re-state the names in ``own`` without a description."""
    out: list[str] = []
    for word in _COMBINATORS:
        for i, sub in enumerate(node.get(word) or []):
            out += missing_descriptions(sub, _join(path, f"{word}[{i}]"), conditioned=own)
    for word in _CONDITIONAL:
        out += missing_descriptions(node.get(word), _join(path, word), skip=own)
    return out


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda p: p.relative_to(CONFIG).as_posix())
def test_every_property_has_a_description(schema: Path) -> None:
    missing = missing_descriptions(load_yaml(schema))
    assert not missing, (
        f"{schema.relative_to(CONFIG)}: {len(missing)} properties lack a description:\n  "
        + "\n  ".join(missing)
    )


def test_a_removed_description_is_reported() -> None:
    schema = load_yaml(CONFIG / "schema.yaml")
    geometry = schema["properties"]["metrics"]["properties"]["geometry"]["properties"]
    del geometry["id_repeats"]["description"]
    schema["$defs"]["corpus"]["properties"]["encoding"]["description"] = "  "
    # the text kind's default encoding re-states a key that has lost its description
    assert missing_descriptions(schema) == [
        "metrics.geometry.id_repeats",
        "$defs.corpus.encoding",
        "$defs.corpus.allOf[0].then.encoding",
    ]


def test_conditional_blocks_restate_described_keys_only() -> None:
    described = {"type": "string", "description": "d"}
    schema = {
        "properties": {"kind": described, "encoding": described, "bare": {"type": "string"}},
        "allOf": [
            {
                "if": {"properties": {"kind": {"const": "text"}}},
                "then": {
                    "properties": {
                        "encoding": {"default": "utf-8"},  # re-stated: skipped
                        "bare": {"default": "x"},  # its key has no description
                        "new": {"default": 1},  # not a key of the object
                    },
                    "allOf": [{"if": {"properties": {"encoding": {"const": "ascii"}}}}],
                },
            },
            {"properties": {"kind": {"default": "text"}}},  # not a conditional block
        ],
        "$defs": {"item": {"properties": {"x": {"items": {"properties": {"y": {}}}}}}},
    }
    assert missing_descriptions(schema) == [
        "bare",
        "$defs.item.x",
        "$defs.item.x[].y",
        "allOf[0].then.bare",
        "allOf[0].then.new",
        "allOf[1].kind",
    ]
