"""Figures of the per-language study, from the datasets of :mod:`repgeom.languages.compute`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from repgeom.languages.compute import score_correlation
from repgeom.languages.datasets import scored_mean_id
from repgeom.plots.common import integer_ticks, legend_right, wrap_label

MAX_LEGEND = 30


def _colors(n: int) -> list[tuple[float, ...]]:
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20" if n <= 20 else "turbo")
    return [cmap(i) for i in range(n)] if n <= 20 else [cmap(x) for x in np.linspace(0, 1, n)]


def _label(ds: xr.Dataset, var: str) -> str:
    attrs = ds[var].attrs
    units = attrs.get("units", "")
    name = attrs.get("long_name", var)
    return name if units in ("", "1") else f"{name} [{units}]"


def _legend(ax: plt.Axes, n: int, title: str = "language") -> None:
    if n <= MAX_LEGEND:
        legend_right(ax, title=title, fontsize=7)


def _titled(fig: plt.Figure, title: str | None) -> plt.Figure:
    """The figure with ``title`` (if any) above its panels (laid out by its engine)."""
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _lines(ax: plt.Axes, ds: xr.Dataset, var: str, level: str, langs: Sequence[str]) -> None:
    for color, lang in zip(_colors(len(langs)), langs, strict=True):
        y = ds[var].sel(language=lang, level=level)
        ax.plot(ds["layer"], y, marker="o", ms=3, color=color, label=str(lang))
    ax.set_xlabel("layer (0 = embeddings)")
    integer_ticks(ax.xaxis)
    ax.set_ylabel(wrap_label(_label(ds, var), 2.4, 10))
    ax.grid(alpha=0.3)


def divergence_by_layer(ds: xr.Dataset) -> plt.Figure:
    """kNN KL and softmax KL from the reference language against layer (sentence level)."""
    reference = ds.attrs.get("reference")
    langs = [str(v) for v in ds["language"].values if str(v) != reference]
    if not langs:
        raise ValueError("the dataset holds only the reference language; nothing to compare")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    for ax, var in zip(axes, ("knn_kl", "softmax_kl"), strict=True):
        _lines(ax, ds, var, "sentence", langs)
        kind = "kNN" if var == "knn_kl" else "softmax"
        ax.set_title(f"{kind} KL from {reference}", fontsize=9)
        ax.set_ylabel(f"{kind} KL [{ds[var].attrs.get('units', 'nat')}]")
    _legend(axes[-1], len(langs))
    return fig


def script_groups_by_layer(
    ds: xr.Dataset, groups: Mapping[str, str], var: str = "id", level: str = "sentence"
) -> plt.Figure:
    """One panel per group (a language written in several scripts), one line per script.

    ``groups`` maps language codes of the dataset to a group name (e.g. 'srp_Cyrl' and
    'srp_Latn' → 'srp'); languages not in the mapping are left out.
    """
    present = [str(v) for v in ds["language"].values]
    by_group: dict[str, list[str]] = {}
    for lang in present:
        if lang in groups:
            by_group.setdefault(groups[lang], []).append(lang)
    if not by_group:
        raise ValueError(f"no language of the dataset {present} is in the group mapping")
    n = len(by_group)
    fig, axes = plt.subplots(
        1, n, figsize=(5.2 * n, 3.6), squeeze=False, sharey=True, layout="constrained"
    )
    for ax, (group, langs) in zip(axes[0], by_group.items(), strict=True):
        _lines(ax, ds, var, level, langs)
        ax.set_title(f"{group} · {level} level", fontsize=9)
        legend_right(ax, fontsize=7, title="script")
    return fig


def grammaticality_by_layer(ds: xr.Dataset) -> plt.Figure:
    """ID of grammatical vs ungrammatical text with bootstrap bands, and their difference."""
    layer = ds["layer"].values
    conf = f"{100 * (1 - float(ds.attrs.get('alpha', 0.05))):g}%"
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12, 3.6), layout="constrained")
    for side, color, label in (("good", "C0", "grammatical"), ("bad", "C3", "ungrammatical")):
        sub = ds.sel(side=side)
        ax0.plot(layer, sub["id"], marker="o", ms=3, color=color, label=label)
        ax0.fill_between(layer, sub["id_low"], sub["id_high"], color=color, alpha=0.2)
    ax0.set_title(f"ID by layer ({conf} bootstrap bands)", fontsize=9)
    ax0.set_ylabel(wrap_label(_label(ds, "id"), 2.4, 10))
    legend_right(ax0, fontsize=7)
    ax1.plot(layer, ds["id_diff"], marker="o", ms=3, color="k", label="all pairs")
    ax1.fill_between(
        layer, ds["id_diff_low"], ds["id_diff_high"], color="0.5", alpha=0.3, label=f"{conf} CI"
    )
    ax1.axhline(0.0, color="0.3", lw=0.8, ls="--")
    n = ds.attrs.get("n_pairs", "?")
    ax1.set_title(f"ID(grammatical) − ID(ungrammatical), n = {n} pairs", fontsize=9)
    ax1.set_ylabel("ID difference")
    legend_right(ax1, fontsize=7)
    for ax in (ax0, ax1):
        ax.set_xlabel("layer (0 = embeddings)")
        integer_ticks(ax.xaxis)
        ax.grid(alpha=0.3)
    return fig


def score_correlation_scatter(
    mean_id: Mapping[str, float],
    scores: Mapping[str, float],
    xlabel: str = "mean intrinsic dimension",
    ylabel: str = "score",
) -> plt.Figure:
    """Scatter of per-language score against mean ID, with r, ρ, n and p-values in the title."""
    res = score_correlation(mean_id, scores)
    langs = res["languages"]
    x = np.array([mean_id[lang] for lang in langs], dtype=np.float64)
    y = np.array([scores[lang] for lang in langs], dtype=np.float64)
    fig, ax = plt.subplots(figsize=(5.2, 4.2), layout="constrained")
    ax.scatter(x, y, s=18, color="C0")
    for lang, xi, yi in zip(langs, x, y, strict=True):
        ax.annotate(lang, (xi, yi), fontsize=6, xytext=(2, 2), textcoords="offset points")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(
        f"r = {res['pearson_r']:.2f} (p = {res['pearson_p']:.2g}), "
        f"ρ = {res['spearman_rho']:.2f} (p = {res['spearman_p']:.2g}), n = {res['n']}",
        fontsize=9,
    )
    ax.grid(alpha=0.3)
    return fig


def checkpoint_score_scatter(
    ds: xr.Dataset, groups: Sequence[str], scores: Mapping[str, float], title: str
) -> plt.Figure:
    """:func:`score_correlation_scatter` of the mean sentence-level ID over layers of one
    checkpoint's study dataset (the languages of ``groups`` with a score), titled ``title``."""
    mean_id, matched = scored_mean_id(ds, groups, scores)
    fig = score_correlation_scatter(
        mean_id, matched, xlabel="mean sentence-level ID over layers", ylabel="score"
    )
    fig.suptitle(title, fontsize=9)
    return fig


def _levels_with_data(ds: xr.Dataset, var: str, levels: Sequence[str]) -> list[str]:
    return [lv for lv in levels if np.isfinite(ds[var].sel(level=lv).values).any()]


def id_anisotropy_levels(
    ds: xr.Dataset, levels: Sequence[str] = ("sentence", "token"), title: str | None = None
) -> plt.Figure:
    """ID and anisotropy against layer, one line per language; one row per level with data.

    Where the ID has repeats (``id_std`` finite), a band of ± one standard deviation is drawn;
    with GRIDE in the dataset, GRIDE at n₁ = ``attrs['gride_scale']`` is drawn dashed, its band
    ± its statistical error.
    """
    langs = [str(v) for v in ds["language"].values]
    rows = _levels_with_data(ds, "id", levels) or [levels[0]]
    fig, axes = plt.subplots(
        len(rows), 2, figsize=(11, 3.4 * len(rows)), squeeze=False, layout="constrained"
    )
    for row, level in zip(axes, rows, strict=True):
        for ax, var in zip(row, ("id", "anisotropy"), strict=True):
            _lines(ax, ds, var, level, langs)
            if var == "id" and "id_std" in ds:
                for color, lang in zip(_colors(len(langs)), langs, strict=True):
                    m = ds["id"].sel(language=lang, level=level).values
                    s = ds["id_std"].sel(language=lang, level=level).values
                    if np.isfinite(s).any():
                        ax.fill_between(ds["layer"], m - s, m + s, color=color, alpha=0.15)
            if var == "id" and "gride" in ds:
                _gride_at_scale(ax, ds, level, langs)
            ax.set_title(f"{ds[var].attrs.get('long_name', var)} · {level} level", fontsize=9)
        _legend(row[-1], len(langs))
    return _titled(fig, title)


def _gride_at_scale(ax: plt.Axes, ds: xr.Dataset, level: str, langs: Sequence[str]) -> None:
    n1 = int(ds.attrs["gride_scale"])
    for color, lang in zip(_colors(len(langs)), langs, strict=True):
        at = ds.sel(language=lang, level=level, scale=n1)
        m, e = at["gride"].values, at["gride_error"].values
        ax.plot(ds["layer"], m, ls="--", lw=1, color=color)
        ax.fill_between(ds["layer"], m - e, m + e, color=color, alpha=0.1, lw=0)
    (key,) = ax.plot([], [], ls="--", lw=1, color="0.3", label=f"GRIDE n₁={n1} (± error)")
    (solid,) = ax.plot([], [], lw=1, color="0.3", label="ID estimator")
    legend_right(ax, handles=[solid, key], fontsize=7)


def _scale_layers(layers: Sequence, most: int = 4) -> list:
    """Up to ``most`` layers spread evenly from the first to the last."""
    picks = np.unique(np.linspace(0, len(layers) - 1, min(most, len(layers))).round().astype(int))
    return [layers[i] for i in picks]


def id_by_scale(ds: xr.Dataset, title: str | None = None) -> plt.Figure:
    """GRIDE against neighbour rank n₁ (log scale), one line per language with a band of ± its
    error; one column per layer (up to four, first to last), one row per level with data."""
    langs = [str(v) for v in ds["language"].values]
    rows = _levels_with_data(ds, "gride", ("sentence", "token")) or ["sentence"]
    layers = _scale_layers(list(ds["layer"].values))
    fig, axes = plt.subplots(
        len(rows),
        len(layers),
        figsize=(3.2 * len(layers) + 1.6, 3.2 * len(rows)),
        squeeze=False,
        layout="constrained",
    )
    n1 = ds["scale"].values
    for row, level in zip(axes, rows, strict=True):
        for ax, layer in zip(row, layers, strict=True):
            for color, lang in zip(_colors(len(langs)), langs, strict=True):
                at = ds.sel(language=lang, level=level, layer=layer)
                m, e = at["gride"].values, at["gride_error"].values
                ax.plot(n1, m, marker="o", ms=3, color=color, label=lang)
                ax.fill_between(n1, m - e, m + e, color=color, alpha=0.15, lw=0)
            ax.set_xscale("log", base=2)
            ax.set_xlabel("neighbour rank n₁ (n₂ = 2·n₁)")
            ax.set_ylabel("GRIDE intrinsic dimension")
            ax.set_title(f"layer {layer} · {level} level", fontsize=9)
            ax.grid(alpha=0.3)
        _legend(row[-1], len(langs))
    return _titled(fig, title)


def heatmaps_by_level(
    ds: xr.Dataset,
    levels: Sequence[str] = ("sentence", "token"),
    variables: Sequence[str] = ("id", "anisotropy"),
    title: str | None = None,
) -> plt.Figure:
    """Language × layer heatmaps of each variable (columns) at each level with data (rows)."""
    langs = [str(v) for v in ds["language"].values]
    layers = ds["layer"].values
    rows = _levels_with_data(ds, variables[0], levels) or [levels[0]]
    height = max(2.6, 1.2 + 0.25 * len(langs))  # of a row
    fig, axes = plt.subplots(
        len(rows),
        len(variables),
        figsize=(5.2 * len(variables), len(rows) * height),
        squeeze=False,
        layout="constrained",
    )
    step = max(1, len(layers) // 12)
    for row, level in zip(axes, rows, strict=True):
        for ax, var in zip(row, variables, strict=True):
            values = ds[var].sel(level=level).transpose("language", "layer").values
            im = ax.imshow(values, aspect="auto", cmap="viridis", interpolation="nearest")
            ax.set_yticks(range(len(langs)), langs, fontsize=7)
            ax.set_xticks(range(0, len(layers), step), [str(v) for v in layers[::step]], fontsize=7)
            ax.set_xlabel("layer")
            ax.set_title(f"{ds[var].attrs.get('long_name', var)} · {level} level", fontsize=9)
            bar = fig.colorbar(im, ax=ax)
            bar.set_label(wrap_label(_label(ds, var), 0.6 * height, 9), fontsize=9)
    return _titled(fig, title)


def checkpoint_figures(
    ds: xr.Dataset,
    boot: xr.Dataset | None,
    groups: Sequence[Mapping],
    pairs: Sequence[Mapping],
    title: str = "",
) -> dict[str, Callable[[], plt.Figure]]:
    """Every figure of one checkpoint of the languages study, by file stem, built on demand.

    ``ds`` is a study dataset (:func:`repgeom.languages.datasets.study_dataset`), ``boot`` the
    grammaticality dataset (or None without pair sets); ``groups`` the dataset's groups (the plan's
    ``dataset_groups``: the language groups, then the pair sets not among them) and ``pairs``
    the minimal-pair sets. The stems are those of
    :func:`repgeom.languages.plan.figure_names`.
    """
    from repgeom.languages.datasets import group_view, pairs_view

    def label(spec: Mapping) -> str:
        synthetic = " · SYNTHETIC data" if spec["synthetic"] else ""
        return f"{title} · {spec['name']}{synthetic}"

    out: dict[str, Callable[[], plt.Figure]] = {}
    for spec in groups:
        name = spec["name"]
        text = label(spec)

        def view(name: str = name) -> xr.Dataset:
            return group_view(ds, name)

        out[f"{name}_id_anisotropy"] = lambda v=view, t=text: id_anisotropy_levels(v(), title=t)
        out[f"{name}_id_by_scale"] = lambda v=view, t=text: id_by_scale(v(), title=t)
        out[f"{name}_heatmaps"] = lambda v=view, t=text: heatmaps_by_level(v(), title=t)
        out[f"{name}_divergence"] = lambda v=view, t=text: _titled(divergence_by_layer(v()), t)
        if spec["script_panels"]:
            members = dict(zip(spec["corpora"], spec["members"], strict=True))
            panels = {members[c]: p for c, p in spec["script_panels"].items()}
            out[f"{name}_scripts"] = lambda v=view, t=text, m=panels: _titled(
                script_groups_by_layer(v(), m), t
            )
    for spec in pairs:
        if boot is None:
            raise ValueError("minimal-pair sets given but no grammaticality dataset")
        name, text = spec["name"], label(spec)
        out[f"{name}_grammaticality"] = lambda n=name, t=text: _titled(
            grammaticality_by_layer(pairs_view(boot, n)), t
        )
    return out
