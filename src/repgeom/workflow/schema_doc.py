"""The configuration reference, rendered from the config schema.

:func:`render` turns the inlined schema (:func:`repgeom.workflow.config.load_schema` of
``config/schema.yaml``: the files it references and its ``$defs`` inlined where they are used)
into one Markdown page: a section per top-level key, and in it a table with one row per key at
any depth, named by its dotted path (``metrics.geometry.id_sample``; ``corpora.<name>.kind`` for
the entries of a mapping of names, ``languages.groups[].name`` for the items of an array), with
its type, default, allowed values and description. Defaults and required keys that depend on
another key (the ``allOf``/``if``/``then`` blocks: a text corpus's ``encoding``) are given in
the row of the key with the condition, and the defaults a ``$defs`` entry fills into a mapping's
values (the Birth study's ``$defs.variant``) in the rows of that mapping's keys.

``python -m repgeom.workflow.schema_doc > docs/configuration.md`` regenerates the page; a test
fails when the committed page differs from what this renders.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from repgeom.workflow.config import SCHEMA_PATH, load_schema, load_yaml

REGENERATE = "python -m repgeom.workflow.schema_doc > docs/configuration.md"
NAME = "<name>"  # the key of one entry of a mapping of names in a dotted path

Schema = Mapping[str, Any]
Row = tuple[str, Schema, str, str]  # dotted path, schema, default cell, requirement


def _value(value: Any) -> str:
    """A value as a config file writes it: YAML flow style, in a code span."""
    if isinstance(value, str):
        text = value
    elif value is None or isinstance(value, bool | int | float):
        text = json.dumps(value)
    else:
        text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10**6)
        text = text.strip()
    return f"`{text}`"


def _escape(text: str) -> str:
    """Markdown of a description: code spans kept, elsewhere the characters Markdown (or a
    table cell) would read escaped, and whitespace folded."""
    parts = re.split(r"(`[^`]*`)", " ".join(str(text).split()))
    out = []
    for i, part in enumerate(parts):
        if i % 2:  # a code span
            out.append(part)
            continue
        part = re.sub(r"([\\*_\[\]|])", r"\\\1", part)
        out.append(part.replace("<", "&lt;").replace(">", "&gt;"))
    return "".join(out)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _types(node: Schema) -> list[str]:
    """The JSON types a node allows, as written (``[integer, null]``), else read from its
    ``enum`` or ``const``."""
    given = node.get("type")
    if given is not None:
        return list(given) if isinstance(given, list) else [given]
    values = node["enum"] if "enum" in node else [node["const"]] if "const" in node else []
    names = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}
    return list(dict.fromkeys(names.get(type(v), "value") for v in values))


def _type(node: Schema) -> str:
    """The type column: ``integer or null``, ``array of string``, ``mapping of string to
    integer``, the alternatives of a ``oneOf``."""
    if "oneOf" in node or "anyOf" in node:
        return " or ".join(_type(b) for b in node.get("oneOf") or node["anyOf"])
    out = []
    for kind in _types(node) or ["any"]:
        items = node.get("items")
        extra = node.get("additionalProperties")
        if kind == "array" and isinstance(items, Mapping):
            kind = f"array of {_type(items)}"
        elif kind == "object" and isinstance(extra, Mapping):
            kind = f"mapping of name to {'object' if _is_record(extra) else _type(extra)}"
        elif kind == "object" and not node.get("properties"):
            kind = "empty mapping" if extra is False else "mapping"
        out.append(kind)
    return " or ".join(out)


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def _bounds(node: Schema) -> list[str]:
    """The range, length, pattern and uniqueness constraints of one node."""
    out = []
    for word, sign in (
        ("minimum", "≥"),
        ("exclusiveMinimum", ">"),
        ("maximum", "≤"),
        ("exclusiveMaximum", "<"),
    ):
        if word in node:
            out.append(f"{sign} {node[word]}")
    if "minLength" in node:
        out.append(f"at least {_count(node['minLength'], 'character')}")
    if "pattern" in node:
        out.append(f"matches `{node['pattern']}`")
    low, high = node.get("minItems"), node.get("maxItems")
    if low is not None and low == high:
        out.append(f"exactly {_count(low, 'item')}")
    else:
        out += [f"at least {_count(low, 'item')}"] if low is not None else []
        out += [f"at most {_count(high, 'item')}"] if high is not None else []
    if "minProperties" in node:
        out.append(f"at least {_count(node['minProperties'], 'entry', 'entries')}")
    if node.get("uniqueItems"):
        out.append("items unique")
    return out


def _allowed(node: Schema) -> str:
    """The allowed column: enum and const values, ranges, item and entry constraints."""
    if "oneOf" in node or "anyOf" in node:
        parts = [_allowed(b) for b in node.get("oneOf") or node["anyOf"]]
        return "; or ".join(p for p in parts if p)
    out = []
    if "enum" in node:
        out.append("one of " + ", ".join(_value(v) for v in node["enum"]))
    if "const" in node:
        out.append(_value(node["const"]))
    out += _bounds(node)
    items = node.get("items")
    if isinstance(items, Mapping) and not _is_record(items) and _allowed(items):
        out.append(f"each item {_allowed(items)}")
    extra = node.get("additionalProperties")
    if isinstance(extra, Mapping) and not _is_record(extra) and _allowed(extra):
        out.append(f"each value {_allowed(extra)}")
    names = node.get("propertyNames")
    if isinstance(names, Mapping) and _bounds(names):
        out.append("names: " + ", ".join(_bounds(names)))
    return "; ".join(out)


def _is_record(node: Any) -> bool:
    """An object with keys of its own: its keys get rows of their own."""
    return isinstance(node, Mapping) and bool(node.get("properties"))


Condition = tuple[tuple[str, tuple[Any, ...]], ...]  # (key, the values it is tested for)


def _conditions(node: Schema) -> tuple[dict[str, list[str]], dict[str, list[Condition]]]:
    """Key -> the defaults and key -> the conditions of the requirements that an ``allOf`` of
    ``if``/``then`` blocks gives it: ``{"encoding": ["`utf-8` where kind is `text`"]}``,
    ``{"path": [(("kind", ("text",)),), ...]}``."""
    defaults: dict[str, list[str]] = {}
    required: dict[str, list[Condition]] = {}
    for block in node.get("allOf") or []:
        if "if" not in block or "then" not in block:
            continue
        condition = tuple(
            (key, tuple([test["const"]] if "const" in test else test.get("enum", [])))
            for key, test in (block["if"].get("properties") or {}).items()
        )
        then = block["then"]
        for key, sub in (then.get("properties") or {}).items():
            if "default" in sub:
                text = f"{_value(sub['default'])} where {_when([condition])}"
                defaults.setdefault(key, []).append(text)
        for key in then.get("required") or []:
            required.setdefault(key, []).append(condition)
    return defaults, required


def _when(conditions: Sequence[Condition]) -> str:
    """``kind is `text`, `flores` or `minimal_pairs```: conditions on one key each merged."""
    by_key: dict[str, list[Any]] = {}
    for condition in conditions:
        for key, values in condition:
            by_key.setdefault(key, []).extend(values)
    out = []
    for key, values in by_key.items():
        shown = [_value(v) for v in dict.fromkeys(values)]
        listed = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]
        out.append(f"{key} is {listed}")
    return "; ".join(out)


def _filled(section: Schema) -> dict[str, Schema]:
    """Defaults that a ``$defs`` entry of ``section`` fills into an object it extends: the
    entry's ``allOf`` names the object's schema, its ``properties`` the defaults (the Birth
    study's ``$defs.variant`` over ``$defs.settings``). Keyed by the object's properties."""
    out: dict[str, Schema] = {}
    for entry in (section.get("$defs") or {}).values():
        for base in entry.get("allOf") or []:
            if _is_record(base) and entry.get("properties"):
                out[json.dumps(base["properties"], sort_keys=True)] = entry["properties"]
    return out


def _rows(
    node: Schema, path: str, filled: Mapping[str, Schema], deep: bool = True
) -> Iterator[Row]:
    """(dotted path, schema, default cell, requirement) of every key under ``node`` (of its
    own keys only unless ``deep``), parents before their keys, in the schema's order."""
    properties = node.get("properties") or {}
    defaults, conditional = _conditions(node)
    overlay = filled.get(json.dumps(properties, sort_keys=True), {})
    for key, sub in properties.items():
        where = _join(path, key)
        if "default" in sub:
            cells = [_value(sub["default"])]
        elif "default" in overlay.get(key, {}):
            cells = [f"{_value(overlay[key]['default'])} (a variant's default)"]
        else:
            cells = []
        cells += defaults.get(key, [])
        if key in (node.get("required") or []):
            need = "required"
        elif key in conditional:
            need = f"required where {_when(conditional[key])}"
        else:
            need = ""
        yield where, sub, "; ".join(cells), need
        if deep:
            yield from _children(sub, where, filled)


def _children(node: Schema, path: str, filled: Mapping[str, Schema]) -> Iterator[Row]:
    """The rows under one key: its own keys, the keys of its mapping's values
    (``path.<name>.key``) and of its array's items (``path[].key``)."""
    if _is_record(node):
        yield from _rows(node, path, filled)
    extra = node.get("additionalProperties")
    if _is_record(extra):
        yield from _rows(extra, f"{path}.{NAME}", filled)
    items = node.get("items")
    if _is_record(items):
        yield from _rows(items, f"{path}[]", filled)


def _table(rows: Sequence[Row]) -> list[str]:
    out = [
        "| key | type | default | allowed | description |",
        "|---|---|---|---|---|",
    ]
    for path, node, default, need in rows:
        default = "; ".join(c for c in (need, default) if c)
        cells = [f"`{path}`", _type(node), default, _allowed(node), _escape(node["description"])]
        out.append("| " + " | ".join(cells) + " |")
    return out


def _anchor(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "", path.replace(NAME, "name"))


HEADER = f"""\
# Configuration reference

<!-- Generated from config/schema.yaml by `{REGENERATE}`: edit the schema, not this page. -->

Every key a config may set, generated from the JSON schema the workflow validates a config
against (`config/schema.yaml` and the files under `config/schema/` it references). A key
missing from a config takes its default; a key the schema does not know, a value out of range
and a key given twice stop the run before any job, with a message naming the key.

- **key**: the dotted path of the key; `<name>` stands for a name of your choosing (the key of
  one corpus, tokenizer, model or variant), `[]` for each item of a list.
- **default**: what a missing key is filled with; "required" when it has none. Some defaults
  and requirements hold only where another key has a value: the condition is given with them.
- **allowed**: the values the schema accepts, besides the type.

The page is regenerated with `{REGENERATE}`; a test fails when it is out of date.
"""


def render(path: str | Path = SCHEMA_PATH) -> str:
    """The configuration reference of the schema at ``path`` (default: the workflow's) as one
    Markdown page: a section per top-level key, a table of its keys at every depth. A section
    kept in a file of its own (``$ref: schema/birth.yaml``) is introduced by the description
    at its reference and then by the file's own."""
    path = Path(path)
    schema = load_schema(path)
    references = load_yaml(path).get("properties") or {}
    out = [HEADER]
    for (key, node, default, need), rows in _sections(schema):
        out += [f"## `{key}` {{#{_anchor(key)}}}", "", _escape(node["description"]), ""]
        ref = references.get(key, {}).get("$ref", "#")
        if not ref.startswith("#"):
            out += [_escape(load_yaml(path.parent / ref)["description"]), ""]
        facts = [("type", _type(node)), ("default", "; ".join(c for c in (need, default) if c))]
        facts.append(("allowed", _allowed(node)))
        out += [" · ".join(f"**{name}**: {text}" for name, text in facts if text), ""]
        if rows:
            out += [*_table(rows), ""]
    return "\n".join(out)


def _sections(schema: Schema) -> Iterator[tuple[Row, list[Row]]]:
    """The row of each top-level key and the rows of the keys under it."""
    for row in _rows(schema, "", {}, deep=False):
        key, node = row[0], row[1]
        yield row, list(_children(node, key, _filled(node)))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m repgeom.workflow.schema_doc``: the page on standard output."""
    if list(sys.argv[1:] if argv is None else argv):
        print(f"usage: {REGENERATE}", file=sys.stderr)
        return 2
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
