"""Figures and tables of the softmax-bottleneck study (Godey et al. 2024), from datasets only.

Conventions shared by the step-axis figures:

- The training step of a checkpoint is the ``step_number`` coordinate when present (as written by
  :func:`repgeom.metrics.gather.gather`), else parsed from its label (:mod:`repgeom.steps`).
- Step axes are symlog with a linear region [0, 1] (``linthresh=1``): logarithmic beyond step 1,
  so Pythia's doubling schedule is evenly spread, while step 0 (initialisation) is still shown.
  When a checkpoint has no step number, the axis is ordinal, ticked with the labels
  (:func:`repgeom.plots.common.step_axis`).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.ticker import FuncFormatter

from repgeom.plots.common import (
    duplicate_labels,
    format_step_axis,
    legend_right,
    mark_duplicates,
    step_axis,
    step_numbers,
    step_positions,
    wrap_label,
)

PANEL_LABELS = {
    "singular_entropy": "singular entropy (nat)",
    "singular_entropy_sq": "singular entropy of σ² (nat)",
    "mean_cosine": "last-layer mean cosine",
    "eval_loss": "eval loss (nat/token)",
}


def _series(
    obj: xr.Dataset | xr.DataArray, var: str, ordinal: bool = False
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(x, values, labels) of a 1-D ``var`` over ``step``, in step order, NaN values dropped;
    x is the step number, or the position along ``step`` when ``ordinal``."""
    da = obj[var] if isinstance(obj, xr.Dataset) else obj
    if da.dims != ("step",):
        raise ValueError(
            f"{var} must be 1-D over 'step', got dims {da.dims}; select the other dims first"
        )
    x = step_positions(da, ordinal)
    y = np.asarray(da.values, dtype=np.float64)
    labels = [str(s) for s in da["step"].values]
    ok = np.isfinite(x) & np.isfinite(y)
    order = np.argsort(x[ok], kind="stable")
    return x[ok][order], y[ok][order], [labels[i] for i in np.flatnonzero(ok)[order]]


def _duplicates(obj: xr.Dataset | xr.DataArray, labels: Sequence[str]) -> list[str]:
    """``duplicate_of`` of the checkpoints ``labels`` (as :func:`_series` returns them)."""
    dup = dict(zip((str(s) for s in obj["step"].values), duplicate_labels(obj), strict=True))
    return [dup[label] for label in labels]


def _label(obj: xr.Dataset | xr.DataArray, var: str) -> str:
    da = obj[var] if isinstance(obj, xr.Dataset) else obj
    name = da.attrs.get("long_name", var)
    units = da.attrs.get("units", "")
    return f"{name} ({units})" if units and units != "1" else name


def eval_loss_vs_step(
    losses: Mapping[str, xr.Dataset | xr.DataArray], var: str = "eval_loss", title: str = ""
) -> plt.Figure:
    """Eval loss against training step, one line per model, best checkpoint marked with a star.

    ``losses`` maps a model name to a Dataset (or DataArray) whose ``var`` is 1-D over ``step``.
    """
    if not losses:
        raise ValueError("no model to plot; pass at least one dataset")
    fig, ax = plt.subplots(figsize=(7.2, 4.0), layout="constrained")
    label = var
    ticks = step_axis(*losses.values())
    for name, obj in losses.items():
        x, y, labels = _series(obj, var, ticks is not None)
        if not len(x):
            continue
        (line,) = ax.plot(x, y, marker="o", ms=3, label=str(name))
        mark_duplicates(ax, x, y, _duplicates(obj, labels), line.get_color())
        best = int(np.argmin(y))
        ax.plot(x[best], y[best], marker="*", ms=13, color=line.get_color(), mec="black", mew=0.6)
        label = _label(obj, var)
    ax.plot([], [], ls="", marker="*", ms=10, color="grey", mec="black", label="best checkpoint")
    format_step_axis(ax, ticks)
    if ticks is not None:
        ax.set_xlabel(wrap_label(ax.get_xlabel(), 4.0, 10))
    ax.set_ylabel(wrap_label(label, 3.0, 10))
    ax.grid(alpha=0.3)
    legend_right(ax, fontsize=7)
    if title:
        ax.set_title(title)
    return fig


def singular_spectrum_over_training(
    ds: xr.Dataset, var: str = "sigma", title: str = ""
) -> plt.Figure:
    """LM-head singular values σᵢ/σ₁ (log y) against i/r, one line per checkpoint.

    Normalised both ways so that checkpoints (and models of different width) share the axes:
    x = i/r with r = number of singular values, y = σᵢ/σ₁ (the shape of the spectrum, not its
    scale, which weight decay and training change). Lines are coloured by checkpoint order.
    """
    da = ds[var]
    if "step" not in da.dims:
        da = da.expand_dims(step=[str(ds.attrs.get("step", "checkpoint"))])
    if set(da.dims) != {"step", "index"}:
        raise ValueError(f"{var} must have dims (step, index), got {da.dims}")
    da = da.transpose("step", "index")
    x_num = step_numbers(da)
    order = np.argsort(np.where(np.isfinite(x_num), x_num, np.inf), kind="stable")
    n = len(order)
    cmap = plt.get_cmap("viridis")
    colors = [cmap(v) for v in np.linspace(0.0, 0.9, n)]
    fig, ax = plt.subplots(figsize=(6.0, 4.0), layout="constrained")
    labels = [str(s) for s in da["step"].values]
    for rank, i in enumerate(order):
        s = np.asarray(da.values[i], dtype=np.float64)
        s = s[np.isfinite(s)]
        if not len(s) or not s[0] > 0:
            continue
        r = len(s)
        ax.plot(np.arange(1, r + 1) / r, s / s[0], color=colors[rank], lw=1.2)
    ax.set_yscale("log")
    ax.set_xlabel("normalised index i / r")
    ax.set_ylabel("σᵢ / σ₁")
    ax.grid(alpha=0.3)
    listed = ListedColormap(colors)
    norm = BoundaryNorm(np.arange(n + 1) - 0.5, n)
    bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=listed), ax=ax)
    ticks = np.unique(np.linspace(0, n - 1, min(n, 8)).round().astype(int))
    bar.set_ticks(ticks)
    bar.set_ticklabels([labels[order[t]] for t in ticks])
    bar.set_label("checkpoint")
    if title:
        ax.set_title(title)
    return fig


def entropy_cosine_loss_vs_step(
    series: Mapping[str, xr.Dataset],
    variables: Sequence[str] = ("singular_entropy", "mean_cosine", "eval_loss"),
    title: str = "",
) -> plt.Figure:
    """Stacked panels (shared step axis): singular entropy, last-layer mean cosine, eval loss.

    ``series`` maps a model name to a Dataset holding the ``variables`` as 1-D arrays over
    ``step``; a variable missing from a model's dataset leaves that panel without its line.
    """
    if not series:
        raise ValueError("no model to plot; pass at least one dataset")
    fig, axes = plt.subplots(
        len(variables), 1, figsize=(7.2, 2.4 * len(variables)), sharex=True, layout="constrained"
    )
    axes = np.atleast_1d(axes)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    ticks = step_axis(*series.values())
    for ax, var in zip(axes, variables, strict=True):
        label = var
        for j, (name, ds) in enumerate(series.items()):
            if var not in ds:
                continue
            x, y, labels = _series(ds, var, ticks is not None)
            color = colors[j % len(colors)]
            ax.plot(x, y, marker="o", ms=3, color=color, label=str(name))
            mark_duplicates(ax, x, y, _duplicates(ds, labels), color)
            label = PANEL_LABELS.get(var) or _label(ds, var)
        ax.set_ylabel(wrap_label(label, 1.8, 8), fontsize=8)
        ax.grid(alpha=0.3)
    format_step_axis(axes[-1], ticks)
    legend_right(axes[0], fontsize=7)
    if title:
        axes[0].set_title(title)
    return fig


def perplexity_vs_rank(heads: xr.Dataset | Mapping[str, xr.Dataset], title: str = "") -> plt.Figure:
    """Eval perplexity (log y) of rank-restricted heads against rank (log₂ x), one line per
    dataset, with the trained full-rank head (dashed) and the model's own head (dotted) as
    horizontal references in the same colour."""
    if isinstance(heads, xr.Dataset):
        heads = {str(heads.attrs.get("model", "heads")): heads}
    if not heads:
        raise ValueError("no head dataset to plot")
    fig, ax = plt.subplots(figsize=(7.2, 4.0), layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for j, (name, ds) in enumerate(heads.items()):
        if ds["perplexity"].dims != ("rank",):
            raise ValueError(f"perplexity of {name} must be 1-D over 'rank'")
        c = colors[j % len(colors)]
        ax.plot(ds["rank"], ds["perplexity"], marker="o", ms=4, color=c, label=str(name))
        if "full_rank_perplexity" in ds:
            ax.axhline(float(ds["full_rank_perplexity"]), color=c, ls="--", lw=1)
        if "model_head_perplexity" in ds:
            ax.axhline(float(ds["model_head_perplexity"]), color=c, ls=":", lw=1.2)
    ax.plot([], [], color="grey", ls="--", label="full-rank head (trained)")
    ax.plot([], [], color="grey", ls=":", label="model's own head")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)
    ax.tick_params(axis="y", which="minor", labelsize=6)
    ax.xaxis.set_major_formatter(plain)
    ax.set_xlabel("head rank r")
    ax.set_ylabel("eval perplexity")
    ax.grid(alpha=0.3, which="both")
    legend_right(ax, fontsize=7)
    if title:
        ax.set_title(title)
    return fig


def werror_vs_rank(
    werrors: Mapping[str, xr.Dataset],
    thresholds: Sequence[float] = (0.5, 0.2, 0.1),
    title: str = "",
) -> plt.Figure:
    """W-error against d (symlog x so that d = 0 shows), one line per corpus × tokenizer label,
    with the table's thresholds as grey horizontal lines."""
    if not werrors:
        raise ValueError("no W-error dataset to plot")
    fig, ax = plt.subplots(figsize=(7.2, 4.0), layout="constrained")
    for name, ds in werrors.items():
        if ds["werror"].dims != ("rank",):
            raise ValueError(f"werror of {name} must be 1-D over 'rank'")
        ax.plot(ds["rank"], ds["werror"], marker="o", ms=3, label=str(name))
    for t in thresholds:
        ax.axhline(t, color="grey", lw=0.8, ls=":")
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(left=0)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("rank d (symlog: linear on [0, 1], log beyond)")
    ax.set_ylabel("W-error ‖P − P_d‖_F / ‖P‖_F")
    ax.grid(alpha=0.3)
    legend_right(ax, fontsize=7)
    if title:
        ax.set_title(title)
    return fig


# --- table ----------------------------------------------------------------------------------

TABLE_COLUMNS = (
    "model",
    "best_step",
    "best_loss",
    "final_step",
    "final_loss",
    "final_minus_best",
    "relative_gap",
)


def saturation_figure(losses: Mapping[str, xr.Dataset]) -> tuple[plt.Figure, tuple[str, str]]:
    """The eval loss over training of every model (gathered ``eval_loss`` datasets) and eval
    corpus where it was measured (a masked LM has none), and its best-vs-final table (CSV,
    LaTeX); a line is labelled 'model · corpus' when there are several corpora."""
    series = {
        (m, c): ds["eval_loss"].sel(corpus=c, drop=True)
        for m, ds in losses.items()
        for c in ds["corpus"].values.tolist()
        if np.isfinite(ds["eval_loss"].sel(corpus=c)).any()  # a masked LM has no eval loss
    }
    if not series:
        raise ValueError(
            f"no eval loss for any model of the study {list(losses)}: masked LMs only?"
        )
    several = len({c for _, c in series}) > 1
    labelled = {(f"{m} · {c}" if several else m): da for (m, c), da in series.items()}
    fig = eval_loss_vs_step(labelled, title="eval loss over training")
    return fig, best_vs_final_table(series, key_names=("model", "corpus"))


def entropy_panel(
    spectrum: xr.Dataset, cosine: xr.Dataset, loss: xr.Dataset, corpus: str
) -> xr.Dataset:
    """One model's series of :func:`entropy_cosine_loss_vs_step`: the LM head's singular
    entropy, and the last-layer mean cosine and eval loss on ``corpus``, over its steps."""
    return xr.merge(
        [
            spectrum[["singular_entropy"]],
            cosine[["mean_cosine"]].sel(corpus=corpus, drop=True),
            loss[["eval_loss"]].sel(corpus=corpus, drop=True),
        ],
        join="outer",
        compat="override",
    )


def werror_figure(
    werrors: Mapping[tuple[str, str], xr.Dataset], thresholds: Sequence[float]
) -> tuple[plt.Figure, tuple[str, str]]:
    """The W-error curves of the (tokenizer, corpus) estimates, the ``thresholds`` marked, and
    the table of the smallest d below each threshold (CSV, LaTeX)."""
    from repgeom.bottleneck.ngram_werror import werror_thresholds

    labelled = {f"{c} × {t}": ds for (t, c), ds in werrors.items()}
    fig = werror_vs_rank(labelled, thresholds, title="5-gram W-error")
    rows = {key: werror_thresholds(ds, thresholds) for key, ds in werrors.items()}
    return fig, werror_threshold_table(rows)


def _key_cells(name: object, key_names: Sequence[str]) -> dict[str, str]:
    """Key columns of a row: ``name`` itself, or a tuple with one entry per key column."""
    parts = name if isinstance(name, tuple) else (name,)
    if len(parts) != len(key_names):
        raise ValueError(f"key {name!r} does not match the key columns {tuple(key_names)}")
    return {k: str(v) for k, v in zip(key_names, parts, strict=True)}


def best_vs_final_rows(
    losses: Mapping[object, xr.Dataset | xr.DataArray],
    var: str = "eval_loss",
    key_names: Sequence[str] = ("model",),
) -> list[dict[str, object]]:
    """Per model: best checkpoint (lowest loss), final checkpoint (the largest step number,
    never a label without one while numbered ones exist; the last listed where none has one)
    and the gap final − best (nats) and (final − best)/best. Checkpoints with a NaN loss are
    ignored. With several ``key_names`` (e.g. model, corpus) the keys of ``losses`` are
    tuples, one entry per key column."""
    rows = []
    for name, obj in losses.items():
        x, y, labels = _series(obj, var, step_axis(obj) is not None)
        if not len(x):
            raise ValueError(f"{name} has no checkpoint with a finite {var}")
        number = dict(zip((str(v) for v in obj["step"].values), step_numbers(obj), strict=True))
        known = [i for i, label in enumerate(labels) if np.isfinite(number[label])]
        b = int(np.argmin(y))
        f = max(known, key=lambda i: number[labels[i]]) if known else len(x) - 1
        rows.append(
            {
                **_key_cells(name, key_names),
                "best_step": labels[b],
                "best_loss": float(y[b]),
                "final_step": labels[f],
                "final_loss": float(y[f]),
                "final_minus_best": float(y[f] - y[b]),
                "relative_gap": float((y[f] - y[b]) / y[b]),
            }
        )
    return rows


def best_vs_final_table(
    losses: Mapping[object, xr.Dataset | xr.DataArray],
    var: str = "eval_loss",
    digits: int = 4,
    key_names: Sequence[str] = ("model",),
) -> tuple[str, str]:
    """The best-vs-final checkpoint loss table as (CSV text, LaTeX booktabs text)."""
    rows = best_vs_final_rows(losses, var, key_names)
    columns = (*key_names, *TABLE_COLUMNS[1:])
    buf = io.StringIO()
    buf.write(",".join(columns) + "\n")
    for r in rows:
        cells = [_csv_cell(r[c], digits) for c in columns]
        buf.write(",".join(cells) + "\n")
    head = [*key_names, "best step", "best loss", "final step", "final loss", "final $-$ best"]
    head.append("gap")
    tex = [
        r"\begin{tabular}{" + "l" * len(key_names) + "rrrrrr}",
        r"\toprule",
        " & ".join(_tex_escape(h) if "$" not in h else h for h in head) + r" \\",
        r"\midrule",
    ]
    for r in rows:
        cells = [
            *(_tex_escape(str(r[k])) for k in key_names),
            _tex_escape(str(r["best_step"])),
            f"{r['best_loss']:.{digits}f}",
            _tex_escape(str(r["final_step"])),
            f"{r['final_loss']:.{digits}f}",
            f"{r['final_minus_best']:.{digits}f}",
            f"{100 * float(r['relative_gap']):.2f}\\%",
        ]
        tex.append(" & ".join(cells) + r" \\")
    tex += [r"\bottomrule", r"\end{tabular}", ""]
    return buf.getvalue(), "\n".join(tex)


def werror_threshold_table(
    thresholds: Mapping[tuple[str, str], Mapping[float, int | str]],
    key_names: Sequence[str] = ("tokenizer", "corpus"),
) -> tuple[str, str]:
    """(CSV, LaTeX) of the smallest d with W-error < t, one row per key and a column per t.

    ``thresholds`` maps a key tuple (e.g. (tokenizer, corpus)) to the output of
    :func:`repgeom.bottleneck.ngram_werror.werror_thresholds` (an int d, or "> k" when
    W-error(k) ≥ t).
    """
    if not thresholds:
        raise ValueError("no W-error threshold row to tabulate")
    levels = sorted({float(t) for row in thresholds.values() for t in row}, reverse=True)
    columns = [*key_names, *(f"d_werror_below_{t:g}" for t in levels)]
    buf = io.StringIO()
    buf.write(",".join(columns) + "\n")
    tex = [
        r"\begin{tabular}{" + "l" * len(key_names) + "r" * len(levels) + "}",
        r"\toprule",
        " & ".join([*key_names, *(f"$d$: W-error $< {t:g}$" for t in levels)]) + r" \\",
        r"\midrule",
    ]
    for key, row in thresholds.items():
        cells = [*_key_cells(key, key_names).values(), *(str(row[t]) for t in levels)]
        buf.write(",".join(_csv_cell(c, 0) for c in cells) + "\n")
        tex.append(" & ".join(_tex_escape(c).replace(">", "$>$") for c in cells) + r" \\")
    tex += [r"\bottomrule", r"\end{tabular}", ""]
    return buf.getvalue(), "\n".join(tex)


def _csv_cell(value: object, digits: int) -> str:
    if isinstance(value, float):
        return f"{value:.{digits + 2}g}" if value else "0"
    text = str(value)
    return '"' + text.replace('"', '""') + '"' if any(ch in text for ch in ',"\n') else text


def _tex_escape(text: str) -> str:
    for ch, rep in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&")):
        text = text.replace(ch, rep)
    for ch in "#$":
        text = text.replace(ch, "\\" + ch)
    return text
