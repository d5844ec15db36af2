"""The study of one checkpoint: activation stores of aligned corpora → per-language datasets.

Stores are anything with ``layers``, ``n_sentences``, ``n_tokens``, ``read_sentences(layer)``
(masked mean of each sentence, (sentence, d)) and ``read(layer)`` (every non-padding token,
(token, d)), i.e.
:class:`repgeom.activations.store.ActivationStore`. Sentence i of every member of a group is the
same sentence (aligned corpora); the member stores are checked to hold the same number of sentences
and the same layers before anything is computed.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import xarray as xr

from repgeom.languages.compute import (
    language_dataset,
    mean_by_language,
    paired_bootstrap_diff,
    score_correlation,
)
from repgeom.languages.estimates import GrideFn, IdFn, IDFunction, check_rows, id_estimator
from repgeom.metrics.anisotropy import anisotropy

SENTENCE_LEVEL = "mean of each sentence's non-padding tokens (BOS included when prepended)"


@dataclass(frozen=True)
class LanguagesOptions:
    """The config's ``languages`` options that shape the numbers (its groups, grammaticality,
    models, steps and scores are the planner's): the ID estimator and its subsamples, GRIDE's
    scales, the divergences' kNN rank and token sample, the bootstrap, the seed."""

    id_estimator: str
    id_sample: int
    id_repeats: int
    gride_scales: int
    gride_scale: int
    knn_k: int
    token_knn_kl: int
    n_boot: int
    alpha: float
    seed: int

    def id_function(self, gride: bool = False) -> IDFunction:
        """The ID of ``id_repeats`` seeded subsamples of ``id_sample`` rows, with GRIDE at
        ``gride_scales`` scales from the same neighbour search when ``gride``."""
        return IDFunction(
            self.id_estimator,
            self.id_sample,
            self.id_repeats,
            self.seed,
            gride_scales=self.gride_scales if gride else 0,
        )

    def attrs(self) -> dict[str, Any]:
        """The dataset attrs naming the estimator (by its registry name: an alias resolved) and
        its sample, repeats and GRIDE scales."""
        return {
            "id_estimator": id_estimator(self.id_estimator),
            "id_sample": self.id_sample,
            "id_repeats": self.id_repeats,
            "gride_scales": self.gride_scales,
            "gride_scale": self.gride_scale,
        }


class SentenceStore(Protocol):
    layers: list[int]
    n_tokens: int

    @property
    def n_sentences(self) -> int: ...

    def read_sentences(self, layer: int) -> np.ndarray: ...

    def read(self, layer: int) -> np.ndarray: ...


def check_aligned(stores: Mapping[str, SentenceStore], names: Sequence[str]) -> list[int]:
    """The layers shared by the stores of ``names``; raises if sentence counts or layers differ."""
    missing = [c for c in names if c not in stores]
    if missing:
        raise ValueError(f"no activation store given for corpus(es) {missing}")
    first = names[0]
    n0, layers0 = stores[first].n_sentences, list(stores[first].layers)
    for c in names[1:]:
        n = stores[c].n_sentences
        if n != n0:
            raise ValueError(
                f"corpus {c!r} has {n} sentences but {first!r} has {n0}; the corpora of a group "
                "must be aligned sentence by sentence (same sentence count; check the source "
                "files and extraction.max_sentences)"
            )
        if list(stores[c].layers) != layers0:
            raise ValueError(f"corpus {c!r} has layers {stores[c].layers}, {first!r} {layers0}")
    return layers0


def group_dataset(
    stores: Mapping[str, SentenceStore],
    group: Mapping[str, Any],
    id_fn: IdFn,
    anisotropy_fn: Callable[[np.ndarray], float] = anisotropy,
    knn_k: int = 1,
    token_knn_kl: int = 0,
    seed: int = 0,
    gride_fn: GrideFn | None = None,
) -> xr.Dataset:
    """:func:`language_dataset` of one group, one layer at a time (one layer in memory).

    The ``language`` coordinate holds corpus names; ``group``, ``member`` and ``reference``
    (the group's reference corpus) are coordinates along it. ``id_repeats`` > 1 with
    ``id_sample`` at least the sentences or tokens of a corpus stops before any estimate,
    naming ``languages.id_sample``, the corpus and its count.
    """
    names = list(group["corpora"])
    reference = group["reference"]
    layers = check_aligned(stores, names)
    for c in names:
        check_rows(id_fn, stores[c].n_sentences, f"of {c!r}", "sentences")
        check_rows(id_fn, stores[c].n_tokens, f"of {c!r}", "tokens")
    per_layer = []
    for layer in layers:
        sentence = {c: stores[c].read_sentences(layer)[None] for c in names}
        ds = language_dataset(
            sentence,
            lambda c, lay: stores[c].read(lay),
            reference,
            id_fn,
            anisotropy_fn,
            knn_k,
            token_knn_kl,
            seed,
            layers=[layer],
            gride_fn=gride_fn,
        )
        per_layer.append(ds.drop_vars("n_points"))
    out = xr.concat(per_layer, dim="layer", combine_attrs="override")
    n_points = ds["n_points"]  # the same at every layer (checked by language_dataset)
    out["n_points"] = n_points
    out = out.assign_coords(
        group=("language", [group["name"]] * len(names)),
        member=("language", list(group["members"])),
        reference=("language", [reference] * len(names)),
    )
    out.attrs = {k: v for k, v in out.attrs.items() if k != "reference"}
    return out


def study_dataset(
    stores: Mapping[str, SentenceStore],
    groups: Sequence[Mapping[str, Any]],
    id_fn: IdFn,
    knn_k: int = 1,
    token_knn_kl: int = 0,
    seed: int = 0,
    attrs: Mapping[str, Any] | None = None,
    gride_fn: GrideFn | None = None,
) -> xr.Dataset:
    """Every group's :func:`group_dataset`, concatenated along ``language`` (dims language,
    layer, level, and scale with GRIDE: from ``id_fn``'s
    :class:`~repgeom.languages.estimates.IDValues`, one neighbour search per subsample, or from
    ``gride_fn``)."""
    if not groups:
        raise ValueError("no language group given")
    parts = [
        group_dataset(stores, g, id_fn, anisotropy, knn_k, token_knn_kl, seed, gride_fn)
        for g in groups
    ]
    layers = [list(p["layer"].values) for p in parts]
    if any(lay != layers[0] for lay in layers):
        raise ValueError(f"groups have different layers: {layers}")
    ds = xr.concat(parts, dim="language", combine_attrs="override")
    ds["knn_kl"].attrs["long_name"] = f"kNN KL divergence from the group's reference (k={knn_k})"
    ds["softmax_kl"].attrs["long_name"] = (
        "mean KL(softmax(x) ‖ softmax(x of the group's reference))"
    )
    ds.attrs = {
        "knn_k": knn_k,
        "token_knn_kl": token_knn_kl,
        "seed": seed,
        "groups": [g["name"] for g in groups],
        "references": [g["reference"] for g in groups],
        **(attrs or {}),
    }
    return ds


def checkpoint_attrs(
    stores: Mapping[str, Any], groups: Sequence[Mapping[str, Any]], options: LanguagesOptions
) -> dict[str, Any]:
    """The attrs of one checkpoint's datasets: its source and fingerprint (from the first
    store), every store's corpus checksum, the estimator (:meth:`LanguagesOptions.attrs`) and
    where each group's data come from."""
    first = next(iter(stores.values()))
    return {
        "model_source": first.attrs["model_source"],
        "checkpoint_fingerprint": first.attrs.get("checkpoint_fingerprint", ""),
        "corpus_sha256": json.dumps({c: s.attrs["corpus_sha256"] for c, s in stores.items()}),
        **options.attrs(),
        "data": json.dumps({g["name"]: g["description"] or g["origin"] for g in groups}),
        "synthetic_groups": [g["name"] for g in groups if g["synthetic"]],
        "sentence_level": SENTENCE_LEVEL,
    }


def checkpoint_datasets(
    stores: Mapping[str, SentenceStore],
    groups: Sequence[Mapping[str, Any]],
    pairs: Sequence[Mapping[str, Any]],
    options: LanguagesOptions,
    attrs: Mapping[str, Any],
) -> tuple[xr.Dataset, xr.Dataset | None]:
    """The languages study of one checkpoint's stores: the :func:`study_dataset` of ``groups``
    (the ID and GRIDE of each subsample from one neighbour search) and, with minimal-pair sets,
    their :func:`grammaticality_dataset` (the bootstrap needs the ID only; else None)."""
    o = options
    ds = study_dataset(
        stores, groups, o.id_function(gride=True), o.knn_k, o.token_knn_kl, o.seed, attrs
    )
    if not pairs:
        return ds, None
    boot = grammaticality_dataset(stores, pairs, o.id_function(), o.n_boot, o.seed, o.alpha, attrs)
    return ds, boot


def group_view(ds: xr.Dataset, group: str) -> xr.Dataset:
    """One group of a study dataset, with member names as ``language`` and its reference in
    ``attrs['reference']`` (the form the figures of :mod:`repgeom.languages.plots` take)."""
    sub = ds.isel(language=np.flatnonzero(ds["group"].values == group))
    if sub.sizes["language"] == 0:
        raise ValueError(f"group {group!r} is not in the dataset (groups: {ds.attrs['groups']})")
    ref = str(sub["reference"].values[0])
    members = [str(m) for m in sub["member"].values]
    ref_member = members[[str(c) for c in sub["language"].values].index(ref)]
    sub = sub.assign_coords(language=members).drop_vars(["group", "member", "reference"])
    sub.attrs = {**ds.attrs, "reference": ref_member, "group": group}
    k = ds.attrs.get("knn_k", "?")
    names = {
        "knn_kl": f"kNN KL divergence from {ref_member} (k={k})",
        "softmax_kl": f"mean KL(softmax(x) ‖ softmax(x of {ref_member}))",
    }
    for var, long_name in names.items():
        sub[var].attrs = {**sub[var].attrs, "long_name": long_name}
    return sub


def grammaticality_dataset(
    stores: Mapping[str, SentenceStore],
    pairs: Sequence[Mapping[str, Any]],
    id_fn: IdFn,
    n_boot: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
    attrs: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """:func:`paired_bootstrap_diff` of each minimal-pair set, concatenated along ``pairs``."""
    if not pairs:
        raise ValueError("no minimal-pair set given")
    parts = []
    for p in pairs:
        good, bad = p["corpora"]
        layers = check_aligned(stores, [good, bad])
        g = np.stack([stores[good].read_sentences(layer) for layer in layers])
        b = np.stack([stores[bad].read_sentences(layer) for layer in layers])
        ds = paired_bootstrap_diff(g, b, id_fn, n_boot, seed, alpha, layers=layers)
        parts.append(
            ds.expand_dims(pairs=[p["name"]]).assign_coords(n_pairs=("pairs", [len(g[0])]))
        )
    out = xr.concat(parts, dim="pairs", combine_attrs="override")
    for name in ("id", "id_low", "id_high", "id_diff", "id_diff_low", "id_diff_high"):
        out[name].attrs = parts[0][name].attrs
    out.attrs = {k: v for k, v in out.attrs.items() if k != "n_pairs"}
    out.attrs.update(attrs or {})
    return out


def pairs_view(ds: xr.Dataset, name: str) -> xr.Dataset:
    """One minimal-pair set of a grammaticality dataset, with ``n_pairs`` in its attrs."""
    sub = ds.sel(pairs=name)
    sub.attrs = {**ds.attrs, "n_pairs": int(sub["n_pairs"]), "pairs": name}
    return sub.drop_vars(["pairs", "n_pairs"])


def scored_mean_id(
    ds: xr.Dataset, groups: Sequence[str], scores: Mapping[str, float]
) -> tuple[dict[str, float], dict[str, float]]:
    """(mean sentence-level ID over layers, score) of the languages of ``groups`` that have a
    score, keyed by the name the scores file uses: the corpus name, or the member name (e.g.
    'eng_Latn') when that names one corpus only."""
    corpora = [
        str(c)
        for c, g in zip(ds["language"].values, ds["group"].values, strict=True)
        if g in groups
    ]
    members = {
        str(c): str(m) for c, m in zip(ds["language"].values, ds["member"].values, strict=True)
    }
    means = mean_by_language(ds.sel(language=corpora))
    taken = [members[c] for c in corpora]
    mean_id: dict[str, float] = {}
    matched: dict[str, float] = {}
    for c in corpora:
        key = c if c in scores else members[c] if taken.count(members[c]) == 1 else None
        if key is not None and key in scores:
            mean_id[key] = means[c]
            matched[key] = scores[key]
    return mean_id, matched


def correlation_row(
    ds: xr.Dataset, groups: Sequence[str], scores: Mapping[str, float], **labels: str
) -> dict[str, Any]:
    """One row of the score-correlation table (labels first, then r, ρ, p-values, n)."""
    mean_id, matched = scored_mean_id(ds, groups, scores)
    res = score_correlation(mean_id, matched)
    return {
        **labels,
        **{k: v for k, v in res.items() if k != "languages"},
        **{"languages": " ".join(res["languages"])},
    }


def correlation_tables(rows: Sequence[Mapping[str, Any]], groups: Sequence[str]) -> tuple[str, str]:
    """The score-correlation table of ``rows`` (:func:`correlation_row`, one per checkpoint) as
    CSV text and as a captioned LaTeX table (:func:`latex_table`)."""
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    caption = (
        "Correlation of per-language scores with the mean sentence-level intrinsic dimension over "
        f"layers (groups: {', '.join(groups)}); p-values two-sided."
    )
    return table.getvalue(), latex_table(rows, caption)


def latex_table(rows: Sequence[Mapping[str, Any]], caption: str) -> str:
    """A LaTeX tabular of the score-correlation rows (booktabs)."""
    cols = list(rows[0]) if rows else []
    cols = [c for c in cols if c != "languages"]
    head = {
        "pearson_r": "Pearson $r$",
        "pearson_p": "$p$",
        "spearman_rho": r"Spearman $\rho$",
        "spearman_p": "$p$",
        "n": "$n$",
    }

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}"
        return str(v).replace("_", r"\_")

    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\begin{tabular}{"
        + "l" * sum(c not in head for c in cols)
        + "r" * sum(c in head for c in cols)
        + "}",
        r"\toprule",
        " & ".join(head.get(c, c) for c in cols) + r" \\",
        r"\midrule",
        *(" & ".join(cell(r[c]) for c in cols) + r" \\" for r in rows),
        r"\bottomrule",
        r"\end{tabular}",
        r"\caption{" + caption.replace("_", r"\_") + "}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"
