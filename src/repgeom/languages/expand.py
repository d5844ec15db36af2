"""Planning: the config's study corpora expanded into ordinary, aligned member corpora.

Called while the workflow plans (``rules/common.smk``, ``rules/languages.smk``) and by the
projection; it reads the config schema's defaults (:mod:`repgeom.workflow.config`). The
members' sentences are made by :mod:`repgeom.languages.corpora` in the corpus jobs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from repgeom.languages.corpora import ORIGINAL_SCRIPT, PAIR_SIDES, derived_name
from repgeom.languages.readers import find_flores
from repgeom.languages.transliteration import SCRIPT_LETTERS
from repgeom.workflow.config import ConfigError, schema_defaults
from repgeom.workflow.paths import PATHS, Paths

STUDY_KINDS = ("flores", "minimal_pairs", "synthetic_scripts", "synthetic_pairs")
SOURCE_KINDS = ("python_docs", "text")
SYNTHETIC_NOTE = {
    "synthetic_scripts": (
        "SYNTHETIC: first sentences of Python docstrings, transliterated letter by letter into "
        "other scripts (not natural language in those scripts)"
    ),
    "synthetic_pairs": (
        "SYNTHETIC: first sentences of Python docstrings (good) and the same sentences with one "
        "random pair of adjacent words swapped (bad)"
    ),
}


def expand_corpora(
    corpora: Mapping[str, Mapping[str, Any]], missing: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    """The config's corpora with each study kind replaced by its aligned member corpora.

    Ordinary corpora (python_docs, text, random_tokens) pass through unchanged. A study corpus
    named ``g`` becomes one corpus per member, named ``g-<member>`` and placed where ``g`` was:

    - ``flores`` → one per language code (``flores-eng_Latn``); each FLORES file is located now
      (so a missing language stops before any job, naming every path looked at);
    - ``minimal_pairs`` and ``synthetic_pairs`` → ``g-good`` and ``g-bad``;
    - ``synthetic_scripts`` → ``g-Latn`` (the source sentences) and one per script
      (``g-Cyrl``, ``g-Grek``).

    Each member is an ordinary corpus entry of kind ``aligned`` (``windows: document``, one
    row per sentence, every sentence in the eval split, sentence i of every member aligned)
    that records its ``origin`` kind, ``group``, ``member``, all ``members`` and what it is made
    from. Raises ConfigError naming the config key for a missing file, a bad ``source`` or a
    name clash. With a ``missing`` list, a missing FLORES or pairs file is appended to it as a
    message instead (the member then has no input file): a dry run plans without the data.
    """
    out: dict[str, dict[str, Any]] = {}
    errors: list[str] = []
    derived: dict[str, str] = {}
    for name, cfg in corpora.items():
        kind = cfg.get("kind")
        if kind not in STUDY_KINDS:
            out[name] = dict(cfg)
            continue
        try:
            members = _expand_one(name, schema_defaults("$defs.corpus", cfg), corpora, missing)
        except ConfigError as err:
            errors.append(str(err))
            continue
        for member, entry in members.items():
            full = derived_name(name, member)
            derived[full] = name
            out[full] = entry
    for full, group in derived.items():
        if full in corpora:
            errors.append(
                f"config key 'corpora.{full}': the name is also made by 'corpora.{group}' "
                f"({corpora[group]['kind']}); rename one of them"
            )
    if errors:
        raise ConfigError("invalid config:\n  " + "\n  ".join(errors))
    return out


def _expand_one(
    name: str,
    cfg: Mapping[str, Any],
    corpora: Mapping[str, Mapping[str, Any]],
    missing: list[str] | None,
) -> dict[str, dict[str, Any]]:
    kind = cfg["kind"]
    key = f"corpora.{name}"
    base: dict[str, Any] = {"kind": "aligned", "origin": kind, "group": name, "windows": "document"}
    if kind == "flores":
        codes = list(cfg.get("languages") or [])
        if not codes:
            raise ConfigError(f"config key '{key}.languages': list at least one language code")
        files: list[str | None] = []
        for i, code in enumerate(codes):
            try:
                files.append(str(find_flores(cfg["path"], cfg["split"], code)))
            except FileNotFoundError as err:  # its message names every path looked at
                files.append(None)
                indented = str(err).replace("\n", "\n  ")
                _missing(f"config key '{key}.languages[{i}]': {indented}", missing)
        base.update(path=cfg["path"], split=cfg["split"], members=codes, synthetic=False)
        return {
            code: {
                **base,
                "member": code,
                "file": f,
                "anchor": files[0],
                "inputs": [p for p in (f, files[0]) if p is not None],
            }
            for code, f in zip(codes, files, strict=True)
        }
    if kind == "minimal_pairs":
        present = Path(cfg["path"]).is_file()
        if not present:
            _missing(
                f"config key '{key}.path': {cfg['path']} does not exist; give a CSV, TSV or "
                "JSON-lines file of minimal pairs",
                missing,
            )
        base.update(
            path=cfg["path"],
            good_column=cfg["good_column"],
            bad_column=cfg["bad_column"],
            members=list(PAIR_SIDES),
            synthetic=False,
            inputs=[cfg["path"]] if present else [],
        )
        return {side: {**base, "member": side} for side in PAIR_SIDES}
    source = cfg.get("source")
    src = corpora.get(source) if isinstance(source, str) else None
    if src is None or src.get("kind") not in SOURCE_KINDS:
        ok = sorted(c for c, v in corpora.items() if v.get("kind") in SOURCE_KINDS)
        raise ConfigError(
            f"config key '{key}.source': {source!r} must name a python_docs or text corpus "
            f"of the config (these are: {ok})"
        )
    base.update(source=source, n_sentences=cfg["n_sentences"], synthetic=True)
    base["description"] = SYNTHETIC_NOTE[kind]
    if kind == "synthetic_scripts":
        scripts = list(cfg["scripts"])
        bad = [s for s in scripts if s not in SCRIPT_LETTERS]
        if bad or not scripts or len(set(scripts)) != len(scripts):
            raise ConfigError(
                f"config key '{key}.scripts': {scripts} must list distinct scripts among "
                f"{sorted(SCRIPT_LETTERS)}"
            )
        members = [ORIGINAL_SCRIPT, *scripts]
        base["members"] = members
        return {s: {**base, "member": s} for s in members}
    base.update(seed=cfg["seed"], members=list(PAIR_SIDES))
    return {side: {**base, "member": side} for side in PAIR_SIDES}


def _missing(message: str, missing: list[str] | None) -> None:
    """Raise ConfigError, or collect the message when the caller plans without the data."""
    if missing is None:
        raise ConfigError(message)
    missing.append(message)


def derived_inputs(entry: Mapping[str, Any], paths: Paths | None = None) -> list[str] | None:
    """Files a study corpus member is made from (its job's inputs); None for other corpora."""
    if entry.get("kind") != "aligned":
        return None
    if entry["origin"] in ("synthetic_scripts", "synthetic_pairs"):
        return [(paths or PATHS).corpus(entry["source"], "eval.jsonl")]
    return list(dict.fromkeys(entry["inputs"]))
