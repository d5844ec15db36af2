"""What the languages study builds, from the config alone: its corpora expanded into aligned
member corpora (:func:`expand_corpora`, called by the core through its hook while the workflow
plans), groups, checkpoints, figure names.

The members' sentences are made by :mod:`repgeom.languages.corpora` in the corpus jobs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from repgeom.languages.corpora import ORIGINAL_SCRIPT, PAIR_SIDES, derived_name
from repgeom.languages.readers import find_flores
from repgeom.languages.transliteration import SCRIPT_LETTERS, script_group
from repgeom.metrics.estimators import check_gride_scale
from repgeom.steps import last_label
from repgeom.workflow.config import ConfigError, schema_defaults
from repgeom.workflow.paths import PATHS, Paths
from repgeom.workflow.studies import CorePlan, StudyPlan

STUDY = "languages"

GroupSpec = dict[str, Any]


def _members(corpora: Mapping[str, Mapping[str, Any]], base: str) -> list[str]:
    """Names of the corpora expanded from the study corpus ``base``, in member order."""
    return [c for c, v in corpora.items() if v.get("kind") == "aligned" and v["group"] == base]


def _bases(corpora: Mapping[str, Mapping[str, Any]], origins: Sequence[str]) -> list[str]:
    return list(
        dict.fromkeys(
            v["group"]
            for v in corpora.values()
            if v.get("kind") == "aligned" and v["origin"] in origins
        )
    )


def study_groups(
    languages: Mapping[str, Any], corpora: Mapping[str, Mapping[str, Any]]
) -> tuple[list[GroupSpec], list[GroupSpec]]:
    """(language groups, minimal-pair sets) of the ``languages`` config section.

    ``corpora`` are the expanded corpora (:func:`expand_corpora`).
    Each spec is a JSON-serialisable dict: ``name``, ``base`` (the study corpus), ``corpora``
    (expanded names, member order), ``members``, ``reference`` (a corpus name), ``origin``,
    ``synthetic`` and ``script_panels`` (corpus → panel for the script figure; empty when no
    language of the group is written in two scripts). A minimal-pair set is also a group of the
    per-language dataset (members good and bad, reference good). Raises ConfigError naming the
    config key for an unknown corpus, a bad reference or a repeated name.
    """
    errors: list[str] = []
    groups: list[GroupSpec] = []
    multi = _bases(corpora, ("flores", "synthetic_scripts", "minimal_pairs", "synthetic_pairs"))
    used_bases: set[str] = set()
    for i, g in enumerate(languages.get("groups") or []):
        spec = _group(f"languages.groups[{i}]", g, corpora, multi, used_bases, errors)
        if spec is not None:
            groups.append(spec)
    pairs: list[GroupSpec] = []
    pair_bases = _bases(corpora, ("minimal_pairs", "synthetic_pairs"))
    for i, base in enumerate(languages.get("grammaticality") or []):
        key = f"languages.grammaticality[{i}]"
        if base not in pair_bases:
            errors.append(
                f"config key '{key}': {base!r} is not a minimal_pairs or synthetic_pairs corpus "
                f"of the config (these are: {pair_bases})"
            )
        elif any(p["base"] == base for p in pairs):
            errors.append(f"config key '{key}': {base!r} is listed twice")
        else:
            spec = _spec(base, base, _members(corpora, base), corpora)
            pairs.append({**spec, "reference": derived_name(base, "good")})
    names = [g["name"] for g in groups] + [g["name"] for g in pairs if g["base"] not in used_bases]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        errors.append(f"config key 'languages.groups': group name(s) {dupes} used twice")
    if errors:
        raise ConfigError("invalid config:\n  " + "\n  ".join(errors))
    return groups, pairs


def _group(
    key: str,
    group: Mapping[str, Any],
    corpora: Mapping[str, Mapping[str, Any]],
    multi: list[str],
    used_bases: set[str],
    errors: list[str],
) -> GroupSpec | None:
    """One language group's spec, or None with the reason appended to ``errors``; its study
    corpus joins ``used_bases``."""
    base = group["corpora"]
    names = _members(corpora, base)
    if not names:
        errors.append(
            f"config key '{key}.corpora': {base!r} is not a flores, minimal_pairs or "
            f"synthetic_* corpus of the config (these are: {multi})"
        )
        return None
    if base in used_bases:
        errors.append(f"config key '{key}.corpora': {base!r} is already used by a group")
        return None
    used_bases.add(base)
    if len(names) < 2:
        errors.append(
            f"config key '{key}.corpora': {base!r} has one member; a group compares two "
            "or more languages or scripts"
        )
        return None
    spec = _spec(group["name"], base, names, corpora)
    ref = group.get("reference")
    if ref is None:
        ref = spec["members"][0]
    if ref not in spec["members"]:
        errors.append(
            f"config key '{key}.reference': {ref!r} is not a member of {base!r} "
            f"(members: {spec['members']})"
        )
        return None
    return {**spec, "reference": derived_name(base, ref)}


def _spec(
    name: str, base: str, names: list[str], corpora: Mapping[str, Mapping[str, Any]]
) -> GroupSpec:
    first = corpora[names[0]]
    members = [corpora[c]["member"] for c in names]
    return {
        "name": name,
        "base": base,
        "corpora": names,
        "members": members,
        "origin": first["origin"],
        "synthetic": bool(first.get("synthetic")),
        "description": first.get("description", ""),
        "script_panels": script_panels(first["origin"], name, names, members),
    }


def script_panels(origin: str, name: str, names: list[str], members: list[str]) -> dict[str, str]:
    """Corpus → panel of the script figure: every member for synthetic scripts; for FLORES the
    languages written in two or more scripts (by :func:`script_group`); else empty."""
    if origin == "synthetic_scripts":
        return dict.fromkeys(names, name)
    if origin != "flores":
        return {}
    lang = {c: script_group(m) for c, m in zip(names, members, strict=True)}
    counts = {g: list(lang.values()).count(g) for g in set(lang.values())}
    return {c: g for c, g in lang.items() if counts[g] > 1}


def dataset_groups(groups: list[GroupSpec], pairs: list[GroupSpec]) -> list[GroupSpec]:
    """Groups of the per-language dataset: the language groups, then pair sets not among them."""
    bases = {g["base"] for g in groups}
    return [*groups, *(p for p in pairs if p["base"] not in bases)]


def study_corpora(groups: list[GroupSpec], pairs: list[GroupSpec]) -> list[str]:
    """Every corpus the study reads, once each, in group order."""
    return list(dict.fromkeys(c for g in dataset_groups(groups, pairs) for c in g["corpora"]))


def study_checkpoints(
    languages: Mapping[str, Any],
    steps: Mapping[str, Sequence[str]],
    last: Mapping[str, str] | None = None,
) -> list[tuple[str, str]]:
    """(model, step) pairs the study runs on: the last step (``last``: as planning decided
    it, default from the labels), or every step, of each model."""
    from repgeom.workflow.config import ConfigError

    models = languages.get("models")
    if models is None:
        models = list(steps)
    unknown = [m for m in models if m not in steps]
    if unknown:
        raise ConfigError(
            f"config key 'languages.models': {unknown} are not models of the config "
            f"(defined: {sorted(steps)})"
        )
    which = languages.get("steps", "last")
    if which == "all":
        return [(m, s) for m in models for s in steps[m]]
    return [(m, last[m] if last else last_label(steps[m])) for m in models if steps[m]]


FIGURES = ("id_anisotropy", "id_by_scale", "heatmaps", "divergence")


def figure_names(groups: list[GroupSpec], pairs: list[GroupSpec]) -> dict[str, list[str]]:
    """File stems of each kind of figure for one checkpoint (kind → stems)."""
    every = dataset_groups(groups, pairs)
    out = {kind: [f"{g['name']}_{kind}" for g in every] for kind in FIGURES}
    out["scripts"] = [f"{g['name']}_scripts" for g in every if g["script_panels"]]
    out["grammaticality"] = [f"{p['name']}_grammaticality" for p in pairs]
    return out


# config keys that choose what is built, not the study's numbers (editing them reruns nothing)
SELECTION_KEYS = ("groups", "grammaticality", "models", "steps", "scores")


def study_plan(
    config: Mapping[str, Any],
    steps: Mapping[str, Sequence[str]],
    paths: Paths = PATHS,
    last: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Everything the languages study builds; ``config`` has its defaults filled and its
    corpora expanded. Keys: ``groups``, ``pairs``, ``checkpoints`` [(model, step)],
    ``corpora``, ``options`` (those that shape the numbers), ``scores`` (a CSV or None),
    ``grammaticality_output``, ``figure_files`` {kind: [path patterns with {model}/{step}]}
    and ``targets`` (every output). Raises ConfigError naming the key."""
    from repgeom.workflow.config import ConfigError

    section = config["languages"]
    check_gride_scale(section["gride_scale"], section["gride_scales"], "languages", ConfigError)
    groups, pairs = study_groups(section, config["corpora"])
    checkpoints = study_checkpoints(section, steps, last)
    corpora = study_corpora(groups, pairs)
    if not corpora:
        checkpoints = []
    scores = section["scores"]
    if scores and not Path(scores).is_file():
        raise ConfigError(
            f"config key 'languages.scores': {scores} does not exist; give a CSV with columns "
            "language,score or remove the key"
        )
    if scores and not groups:
        raise ConfigError(
            "config key 'languages.scores': scores are correlated with the languages of "
            "languages.groups, which is empty"
        )
    stems = figure_names(groups, pairs)
    per_step = "{model}/{step}"
    files = {
        kind: [paths.figure(STUDY, f"{per_step}/{s}") for s in names]
        for kind, names in stems.items()
    }
    files["pdf"] = [
        paths.figure(STUDY, f"{per_step}/{s}", "pdf") for v in stems.values() for s in v
    ]
    grammaticality = [paths.metric("grammaticality", "{model}", "{step}")] if pairs else []
    each = [
        paths.metric(STUDY, "{model}", "{step}"),
        *grammaticality,
        *(f for paths in files.values() for f in paths),
    ]
    targets = [p.format(model=m, step=s) for m, s in checkpoints for p in each]
    if scores and checkpoints:
        targets += [paths.table(STUDY, "score_correlation", ext) for ext in ("csv", "tex")]
    return {
        "groups": groups,
        "pairs": pairs,
        "dataset_groups": dataset_groups(groups, pairs),
        "checkpoints": checkpoints,
        "corpora": corpora,
        "options": {k: v for k, v in section.items() if k not in SELECTION_KEYS},
        "scores": scores,
        "grammaticality_output": grammaticality,
        "figure_files": files,
        "targets": targets,
    }


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


def plan(section: Mapping[str, Any] | None, run: CorePlan, paths: Paths = PATHS) -> StudyPlan:
    """The study's plan (:func:`study_plan`): its aligned corpora extracted at the checkpoints it
    reads, the metrics, figures and (with scores) the correlation; nothing when the config does
    not name the study."""
    config = dict(run.config)
    if section is None:
        config[STUDY] = {**config[STUDY], "groups": [], "grammaticality": []}
    found = study_plan(config, run.steps, paths, run.last)
    checkpoints, corpora = found["checkpoints"], found["corpora"]
    tokenizes: dict[str, list[str]] = {}
    for model, _ in checkpoints:
        tok = tokenizes.setdefault(config["models"][model]["tokenizer"], [])
        tok += [c for c in corpora if c not in tok]
    return StudyPlan(
        targets=tuple(found["targets"]),
        reads_checkpoints={
            (m, s): tuple(paths.activations(m, s, c) for c in corpora) for m, s in checkpoints
        },
        tokenizes={k: tuple(v) for k, v in tokenizes.items()},
        stores=tuple((m, s, c) for m, s in checkpoints for c in corpora),
        params=found,
    )
