"""Logit-lens figures and table: loss (and top-1 agreement) against layer, one line per
checkpoint, the final-norm decoding solid and the head alone dashed."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import xarray as xr
from matplotlib.lines import Line2D

from repgeom.logit_lens.datasets import VARIABLES
from repgeom.plots.common import integer_ticks, legend_right, step_colors, wrap_label

STYLES = {"final_norm": "-", "no_norm": "--"}
LABELS = {"final_norm": "final norm + LM head", "no_norm": "LM head alone"}
YLABELS = {
    "logit_lens_loss": "logit-lens loss [nat/token]",
    "logit_lens_agreement": "top-1 agreement with the model",
}


def by_layer(datasets: Mapping[str, xr.Dataset], var: str = "logit_lens_loss") -> plt.Figure:
    """``var`` against layer: one panel per model × corpus, one colour per checkpoint, one
    line style per decoding, a band of ± one standard error where the dataset has it."""
    panels = [(m, str(c)) for m, ds in datasets.items() for c in ds["corpus"].values]
    if not panels:
        raise ValueError("no logit-lens dataset to plot")
    fig, axes = plt.subplots(
        1, len(panels), figsize=(4.0 * len(panels) + 1.4, 3.4), squeeze=False, layout="constrained"
    )
    for ax, (model, corpus) in zip(axes[0], panels, strict=True):
        ds = datasets[model]
        colors = step_colors(ds)
        for s, step in enumerate(ds["step"].values):
            for decoding in ds["decoding"].values:
                at = {"step": step, "corpus": corpus, "decoding": decoding}
                y = ds[var].sel(at)
                if f"{var}_se" in ds:  # ± one standard error
                    se = ds[f"{var}_se"].sel(at)
                    ax.fill_between(ds["layer"], y - se, y + se, color=colors[s], alpha=0.15, lw=0)
                ax.plot(
                    ds["layer"],
                    y,
                    ls=STYLES.get(str(decoding), ":"),
                    marker="o",
                    ms=2.5,
                    color=colors[s],
                    label=str(step) if decoding == "final_norm" else None,
                )
        ax.set_title(wrap_label(f"{model} · {corpus}", 3.4, 9), fontsize=9)
        ax.set_xlabel("layer (0 = embeddings)")
        integer_ticks(ax.xaxis)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(YLABELS.get(var, var))
    handles, labels = axes[0][-1].get_legend_handles_labels()
    handles += [Line2D([], [], color="k", ls=s, label=LABELS[d]) for d, s in STYLES.items()]
    labels += [LABELS[d] for d in STYLES]
    legend_right(axes[0][-1], handles=handles, labels=labels, fontsize=6)
    return fig


def table_rows(datasets: Mapping[str, xr.Dataset]) -> list[dict]:
    """Rows model × step × corpus × decoding × layer with the loss and the agreement, their
    standard errors and the positions decoded."""
    rows = []
    for model, ds in datasets.items():
        frame = ds[[*VARIABLES, "logit_lens_tokens"]].drop_vars(
            [c for c in ds.coords if c not in ("step", "corpus", "decoding", "layer")]
        )
        for record in frame.to_dataframe().reset_index().to_dict("records"):
            rows.append({"model": model, **{k: record[k] for k in record}})
    return rows
