"""Config checks with messages that name the key: schema errors, then cross-references and paths."""

from __future__ import annotations

import codecs
import copy
import functools
import glob
import json
import os
import sys
from pathlib import Path
from typing import Any, TypeVar

import jsonschema
import yaml

from repgeom.options import build

T = TypeVar("T")


class ConfigError(ValueError):
    """A config value is wrong; the message names the key and what to do."""


class StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key written twice in one mapping is a ConfigError
    naming the key, the file and both lines (PyYAML keeps the last silently). Keys brought in
    by a merge (``<<: *anchor``) may be overridden: only keys written in the mapping count."""

    def construct_document(self, node: yaml.Node) -> Any:
        """Refuse duplicated keys anywhere in the document, then construct it."""
        self._refuse_duplicates(node, set())
        return super().construct_document(node)

    def _refuse_duplicates(self, node: yaml.Node, seen: set[int]) -> None:
        """Walk the node graph once (aliases shared), checking every mapping's own keys."""
        if id(node) in seen:
            return
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, yaml.Node] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(
                    key_node, yaml.ScalarNode
                ):
                    continue
                key = self.construct_object(key_node, deep=True)
                if key in first:
                    mark = key_node.start_mark
                    raise ConfigError(
                        f"{mark.name}, line {mark.line + 1}: config key {key!r} is given twice "
                        f"in one mapping (first at line {first[key].start_mark.line + 1}); a "
                        "config says each thing once: remove or rename one of them"
                    )
                first[key] = key_node
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        else:
            return
        for child in children:
            self._refuse_duplicates(child, seen)


def load_yaml(path: str | Path, name: str | None = None) -> Any:
    """A YAML file read with :class:`StrictLoader`: the one way the project reads a config,
    schema or profile. Messages name the file ``name`` (default: ``path``)."""
    with open(path, encoding="utf-8") as f:
        loader = StrictLoader(f)
        if name is not None:
            loader.name = name  # what PyYAML's marks (and so every message) name the file by
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's pairs as a dict; a key given twice is a ConfigError."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ConfigError(f"config key {key!r} is given twice in one JSON object")
        out[key] = value
    return out


def _configfile_arguments(argv: list[str]) -> list[str]:
    """The config files a Snakemake command line names (``--configfile(s) a.yaml b.yaml``,
    ``--configfile=a.yaml``), as written."""
    out: list[str] = []
    taking = False
    for arg in argv:
        option, _, value = arg.partition("=")
        if option in ("--configfile", "--configfiles"):
            taking = not value
            out += [value] if value else []
        elif arg.startswith("-"):
            taking = False
        elif taking:
            out.append(arg)
    return out


def config_file_name(path: str | Path, argv: list[str] | None = None) -> str:
    """How messages name a config file: as the user gave it. Snakemake 9 hands the workflow
    the config files it loaded as the source cache's copy (a ``configfile:`` directive with
    ``workflow.source_path``: a string flagged ``sourcecache_entry`` with the original path)
    or made absolute (``--configfile``). The command line's own spelling is used where one of
    its ``--configfile`` arguments names the file, else the original path relative to the
    working directory when it lies below it, else the original path."""
    original = str((getattr(path, "flags", None) or {}).get("sourcecache_entry") or path)
    if not os.path.isabs(original):
        return original
    parts = Path(os.path.normpath(original)).parts
    for arg in _configfile_arguments(sys.argv if argv is None else argv):
        given = Path(os.path.normpath(arg)).parts
        if ".." not in given and given and parts[-len(given) :] == given:
            return arg
    relative = os.path.relpath(original)
    return original if relative.startswith("..") else relative


def load_config_file(path: str | Path) -> Any:
    """A config file as Snakemake reads one (JSON first, else YAML), with every mapping's keys
    unique: a key given twice is a ConfigError naming the key, the file (as the user gave it,
    see :func:`config_file_name`) and (YAML) the line."""
    text = Path(path).read_text(encoding="utf-8")
    name = config_file_name(path)
    try:
        return json.loads(text, object_pairs_hook=_unique_pairs)
    except ConfigError as err:
        raise ConfigError(f"{name}: {err}") from None
    except ValueError:
        return load_yaml(path, name)


def key_path(parts: Any) -> str:
    """'models.decoder.training.lr' from a jsonschema path."""
    return ".".join(str(p) for p in parts) or "<top level>"


def describe(error: jsonschema.ValidationError) -> str:
    """One line per schema error, naming the config key."""
    where = key_path(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        hint = f"; allowed keys: {', '.join(allowed)}" if allowed else ""
        return f"config key '{where}': unknown key(s) {', '.join(map(repr, extra))}{hint}"
    if error.validator == "required":
        return f"config key '{where}': {error.message} (add it to the config)"
    return f"config key '{where}': {error.message}"


def schema_errors(config: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Every violation of the schema, most specific first, one message each."""
    cls = jsonschema.validators.validator_for(schema)
    errors = []
    for err in sorted(cls(schema).iter_errors(config), key=lambda e: list(e.absolute_path)):
        leaves = [e for e in err.context] if err.context else []
        errors.append(describe(min(leaves, key=lambda e: -len(e.absolute_path)) if leaves else err))
    return errors


def load_schema(path: str | Path) -> dict[str, Any]:
    """The YAML JSON schema with every reference inlined: other schema files, and
    ``#/$defs/…`` within a file (so that defaults are found wherever a definition is used)."""
    path = Path(path)
    raw = load_yaml(path)

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            rest = {k: inline(v) for k, v in node.items() if k != "$ref"}
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return {**inline(raw["$defs"][ref.removeprefix("#/$defs/")]), **rest}
            if isinstance(ref, str):
                fragment = load_schema(path.parent / ref)
                fragment.pop("$schema", None)
                return {**fragment, **rest}
            return rest
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return inline(raw)


def check_schema(config: dict[str, Any], schema: str | Path | dict[str, Any]) -> None:
    """Raise ConfigError listing every schema violation by key (``schema``: loaded, or its
    path)."""
    errors = schema_errors(config, schema if isinstance(schema, dict) else load_schema(schema))
    if errors:
        raise ConfigError("invalid config:\n  " + "\n  ".join(errors))


def canonical(node: Any) -> Any:
    """The same config with every mapping's keys sorted, so YAML key order never changes params."""
    if isinstance(node, dict):
        return {k: canonical(node[k]) for k in sorted(node)}
    if isinstance(node, list):
        return [canonical(v) for v in node]
    return node


def with_defaults(instance: Any, schema: dict[str, Any]) -> Any:
    """A copy of a config (section) with the schema's defaults filled in, recursively.

    Snakemake's ``validate(..., set_default=True)`` does not descend into schema fragments kept
    in other files; this fills them from the inlined schema of :func:`load_schema`. Objects get
    every missing property that has a default; arrays have each item filled by ``items``.
    """
    if isinstance(instance, dict):
        out = dict(instance)
        for cond in schema.get("allOf") or []:  # defaults of one kind: where its `if` matches
            if "then" in cond and _matches(out, cond.get("if") or {}):
                out = with_defaults(out, cond["then"])
        for key, sub in (schema.get("properties") or {}).items():
            if key not in out and "default" in sub:
                out[key] = copy.deepcopy(sub["default"])
            if key in out:
                out[key] = with_defaults(out[key], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key in set(out) - set(schema.get("properties") or {}):
                out[key] = with_defaults(out[key], extra)
        return out
    if isinstance(instance, list) and isinstance(schema.get("items"), dict):
        return [with_defaults(v, schema["items"]) for v in instance]
    return instance


def _matches(instance: dict[str, Any], condition: dict[str, Any]) -> bool:
    """Whether an ``if`` of const/enum properties holds for an instance."""
    for key, rule in (condition.get("properties") or {}).items():
        value = instance.get(key)
        if "const" in rule and value != rule["const"]:
            return False
        if "enum" in rule and value not in rule["enum"]:
            return False
    return True


SCHEMA_PATH = Path(__file__).resolve().parents[3] / "config" / "schema.yaml"  # in the checkout


@functools.cache
def _schema() -> dict[str, Any]:
    return load_schema(SCHEMA_PATH)


def schema_node(path: str) -> dict[str, Any]:
    """The schema of one config section: 'metrics.geometry', 'bottleneck.heads', '$defs.corpus'."""
    node = _schema()
    for key in path.split("."):
        children = node.get("properties", {})
        node = children[key] if key in children else node[key]
    return copy.deepcopy(node)


def schema_defaults(path: str, instance: dict[str, Any] | None = None) -> dict[str, Any]:
    """A config section with the schema's defaults filled in (of an empty one by default): the
    one place library code takes a default from."""
    return with_defaults(dict(instance or {}), schema_node(path))


def _need(
    errors: list[str],
    section: dict,
    name: Any,
    key: str,
    kind_ok: Any = None,
) -> None:
    """Add to ``errors`` when ``name`` is not defined in ``section``, or (``kind_ok``) is of a
    kind that cannot be used at config key ``key``."""
    if name not in section:
        errors.append(f"config key '{key}': {name!r} is not defined (defined: {sorted(section)})")
    elif kind_ok is not None and not kind_ok(section[name]):
        errors.append(f"config key '{key}': {name!r} cannot be used here")


def _not_random(c: dict) -> bool:
    """A corpus of text, not random token ids."""
    return c["kind"] != "random_tokens"


def _tokenizer_reference_errors(corpora: dict, tokenizers: dict, models: dict) -> list[str]:
    """Each tokenizer's corpus (trained: not random tokens) or model (not a trained one)."""
    errors: list[str] = []
    for name, tok in tokenizers.items():
        if tok["kind"] == "train":
            _need(errors, corpora, tok["corpus"], f"tokenizers.{name}.corpus", _not_random)
        else:
            key = f"tokenizers.{name}.model"
            _need(errors, models, tok["model"], key, lambda m: m["source"] != "train")
    return errors


def _model_reference_errors(corpora: dict, tokenizers: dict, name: str, model: dict) -> list[str]:
    """A model's tokenizer; its keys that only trained (architecture) or only hub and local
    models (objective) take; a trained model's corpus and checkpoints within its steps."""
    errors: list[str] = []
    _need(errors, tokenizers, model["tokenizer"], f"models.{name}.tokenizer")
    if model["source"] != "train" and "architecture" in model:
        errors.append(
            f"config key 'models.{name}.architecture': only for models the workflow trains; "
            "a hub or local model is what its checkpoint's config.json says: remove the key"
        )
    if model["source"] == "train" and model.get("objective", "auto") != "auto":
        errors.append(
            f"config key 'models.{name}.objective': only for hub and local models (a trained "
            "model's head is its architecture's)"
        )
    if model["source"] == "train":
        _need(errors, corpora, model["corpus"], f"models.{name}.corpus", _not_random)
        ckpts = model["training"]["checkpoints"]
        if isinstance(ckpts, list) and max(ckpts) > model["training"]["steps"]:
            errors.append(
                f"config key 'models.{name}.training.checkpoints': step {max(ckpts)} is beyond"
                f" training.steps={model['training']['steps']}"
            )
    return errors


def check_references(config: dict[str, Any]) -> None:
    """Names used across sections exist and have the right kind; raise ConfigError otherwise."""
    corpora, tokenizers, models = config["corpora"], config["tokenizers"], config["models"]
    errors = _tokenizer_reference_errors(corpora, tokenizers, models)
    for name, model in models.items():
        errors += _model_reference_errors(corpora, tokenizers, name, model)
    for i, name in enumerate(config["extraction"]["corpora"] or []):
        _need(errors, corpora, name, f"extraction.corpora[{i}]")
    if errors:
        raise ConfigError("invalid config:\n  " + "\n  ".join(errors))


def check_decoding(config: dict[str, Any]) -> None:
    """A text corpus's ``encoding`` names a text codec, and only text corpora have ``encoding``,
    ``errors`` (the languages study's files are UTF-8) or ``field``; raise ConfigError
    otherwise."""
    errors = []
    for name, corpus in config["corpora"].items():
        if corpus["kind"] != "text":
            errors += [
                f"config key 'corpora.{name}.{key}': only text corpora are decoded as the config"
                f" says ({corpus['kind']} files are read as UTF-8): remove the key"
                for key in ("encoding", "errors")
                if key in corpus
            ]
            if "field" in corpus:
                errors.append(
                    f"config key 'corpora.{name}.field': only text corpora read records "
                    f"(JSON-lines, Parquet) by field, {corpus['kind']} corpora do not: remove it"
                )
            continue
        try:  # a codec Python knows, and a text one (not base64 or rot13)
            codecs.lookup(corpus["encoding"])
            b"a".decode(corpus["encoding"], "ignore")
        except LookupError as err:
            errors.append(
                f"config key 'corpora.{name}.encoding': {err}; give a Python codec name, e.g. "
                "utf-8, latin-1 or cp1252"
            )
    if errors:
        raise ConfigError("invalid config:\n  " + "\n  ".join(errors))


def matching_files(pattern: str) -> list[Path]:
    """Files (never folders) a text corpus's path or glob names, sorted; empty when none does.
    A folder given as the path reads as the glob ``folder/*`` does: its files, sorted, not its
    hidden files (names starting with a dot), not its subfolders."""
    if os.path.isdir(pattern):
        pattern = os.path.join(glob.escape(pattern), "*")
    return sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())


def text_corpus_missing(name: str, corpus: dict[str, Any]) -> str | None:
    """A message if a text corpus's path matches no file (folders do not count), else None."""
    if corpus["kind"] != "text" or matching_files(corpus["path"]):
        return None
    how = (
        f"it will be downloaded from {corpus['url']} when the network allows"
        if corpus.get("url")
        else "put the file there or change the path"
    )
    what = (
        f"the folder {corpus['path']!r} holds no file (hidden files and subfolders are not read)"
        if os.path.isdir(corpus["path"])
        else f"no file matches {corpus['path']!r}"
    )
    return f"config key 'corpora.{name}.path': {what}; {how}"


def load_config(
    config: dict[str, Any],
    schema_path: str | Path,
    sections: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The config a run uses: checked against the schema (plus ``sections``: the schemas of the
    sections registered studies bring) and for codecs (ConfigError naming every key that is
    wrong), defaults filled, keys sorted (YAML key order never changes a job's params)."""
    schema = load_schema(schema_path)
    if sections:
        schema = {**schema, "properties": {**schema["properties"], **sections}}
    check_schema(config, schema)
    config = canonical(with_defaults(config, schema))
    check_decoding(config)
    return config


def options(cls: type[T], path: str, section: dict[str, Any] | None = None) -> T:
    """The typed options ``cls`` of one config section (``path`` as in :func:`schema_node`):
    checked against its schema (ConfigError naming a wrong key), the keys it lacks filled with
    the schema's defaults; keys the class does not take (a job's device, threads) are left out."""
    filled = schema_defaults(path, section)
    errors = [
        e.replace("config key '", f"config key '{path}.").replace(f"{path}.<top level>", path)
        for e in schema_errors(filled, schema_node(path))
    ]
    if errors:
        raise ConfigError("invalid options:\n  " + "\n  ".join(errors))
    return build(cls, filled, where=path, extra=True)
