"""What the origins figures of a run show, in numbers: where anisotropy and mean cosine peak over
training, what share of the mean cosine the top rogue dimensions carry there, the massive-
activation ratio over training and where the largest entries sit, and the geometry of the
train-frequency buckets with the frequency drift (issue 31).

Run by hand on a finished run: python benchmarks/origins_default_run.py [RESULTS] [POSITIONS]
(RESULTS defaults to results/, POSITIONS to all). It reads the gathered datasets
metrics/{anisotropy,dimensions,frequency}/{model}.nc, the activation stores (the position and
token id of the largest entries) and the last checkpoint's tokenizer.json (to decode them).
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

import numpy as np
import xarray as xr

from repgeom.plots.origins import bucket_labels

KS = (1, 3)  # shares of the mean cosine in the top-k rogue dimensions


def _decoder(results: Path, model: str, steps: list[str]):
    """token id -> its text, from the tokenizer saved with the model's last checkpoint."""
    path = results / "models" / model / steps[-1] / "tokenizer.json"
    if not path.exists():
        return lambda i: "?"
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    return lambda i: repr(tok.id_to_token(int(i)))


def _cell(ds: xr.Dataset, step: str, layer: int) -> xr.Dataset:
    return ds.sel(step=step, layer=layer)


def _share(d: xr.Dataset, k: int) -> xr.DataArray:
    return d["rogue_contribution"].sel(rogue_rank=slice(1, k)).sum("rogue_rank") / d["mean_cosine"]


def _rogue_row(label: str, a: xr.Dataset, d: xr.Dataset) -> str:
    without = d["mean_cosine_without_rogue"]
    dims = d["rogue_dimension"].sel(rogue_rank=slice(1, 3)).values.tolist()
    return (
        f"  {label:<10} {float(a['anisotropy']):9.3f} {float(d['mean_cosine']):7.3f} "
        + " ".join(f"{float(_share(d, k)):7.3f}" for k in KS)
        + " "
        + " ".join(
            f"{float(without.sel(without_top=k)):7.3f}" for k in without["without_top"].values
        )
        + f" {float(d['standardised_mean_cosine']):8.3f}  {dims}"
    )


def rogue_section(a: xr.Dataset, d: xr.Dataset, corpus: str) -> None:
    """Peaks of anisotropy and mean cosine, and the rogue dimensions at the peak layer."""
    a, d = a.sel(corpus=corpus), d.sel(corpus=corpus)
    for name, var in (("anisotropy", a["anisotropy"]), ("mean cosine", d["mean_cosine"])):
        at = var.argmax(dim=("step", "layer"))
        step, layer = str(var["step"][at["step"]].values), int(var["layer"][at["layer"]])
        print(f"  {name} peaks at {step}, layer {layer}: {float(var.isel(at)):.3f}")
    at = a["anisotropy"].argmax(dim=("step", "layer"))
    layer = int(a["layer"][at["layer"]])
    ks = d["without_top"].values.tolist()
    print(
        f"  layer {layer} over training: step, anisotropy, mean cosine, share in top "
        f"{'/'.join(map(str, KS))}, mean cosine without top {'/'.join(map(str, ks))}, "
        "standardised mean cosine, top-3 dimensions"
    )
    for step in a["step"].values:
        print(_rogue_row(str(step), _cell(a, step, layer), _cell(d, step, layer)))
    shares = {k: _share(d, k).where(d["mean_cosine"] >= 0.01) for k in KS}
    print(
        "  over all steps and layers (mean cosine ≥ 0.01): share in the top "
        + ", ".join(f"{k}: {float(s.min()):.3f}–{float(s.max()):.3f}" for k, s in shares.items())
    )


@cache
def _labels(store: Path) -> tuple[np.ndarray, np.ndarray]:
    ds = xr.open_zarr(store)
    return ds["position"].values, ds["token_id"].values


def _where(stores: Path, step: str, corpus: str, row: int) -> tuple[int, int]:
    """(position, token id) of a token row of a store."""
    position, token_id = _labels(stores / step / f"{corpus}.zarr")
    return int(position[row]), int(token_id[row])


def massive_section(d: xr.Dataset, stores: Path, corpus: str, decode) -> None:
    """The massive-activation ratio over training and where the largest entries sit."""
    d = d.sel(corpus=corpus)
    ratio = d["massive_ratio"]
    print(
        f"  Sun et al.'s criterion (> {d.attrs['absolute']} and > {d.attrs['relative']}× the "
        f"median): {int(d['n_massive'].sum())} massive activations in all steps and layers"
    )
    print(
        "  max |x| / median |x| per step (the largest entry's dimension@position), layers "
        + ", ".join(map(str, d["layer"].values))
    )
    for step in d["step"].values:
        cells = []
        for layer in d["layer"].values:
            c = d.sel(step=step, layer=layer)
            position = _where(stores, str(step), corpus, int(c["max_abs_row"]))[0]
            cells.append(
                f"{float(c['massive_ratio']):5.2f} ({int(c['max_abs_dimension'])}@{position})"
            )
        print(f"  {str(step):<10} " + " ".join(f"{v:<15}" for v in cells))
    at = ratio.argmax(dim=("step", "layer"))
    cell = d.isel(at)
    step, layer = str(cell["step"].values), int(cell["layer"])
    position, token = _where(stores, step, corpus, int(cell["max_abs_row"]))
    print(
        f"  largest ratio {float(cell['massive_ratio']):.2f} at {step}, layer {layer}: "
        f"|x| = {float(cell['max_abs']):.3g} against a median of {float(cell['median_abs']):.3g}, "
        f"dimension {int(cell['max_abs_dimension'])}, position {position}, token {token} "
        f"{decode(token)}"
    )
    last = str(d["step"].values[-1])
    print(f"  largest entry of each layer at {last}: layer: dimension, position, token id")
    for layer in d["layer"].values:
        c = d.sel(step=last, layer=layer)
        position, token = _where(stores, last, corpus, int(c["max_abs_row"]))
        print(
            f"  {int(layer)}: dimension {int(c['max_abs_dimension'])}, position {position}, "
            f"token {token} {decode(token)}, |x| = {float(c['max_abs']):.3g}"
        )
    positions = [
        _where(stores, str(s), corpus, int(d["max_abs_row"].sel(step=s, layer=la)))[0]
        for s in d["step"].values
        for la in d["layer"].values
    ]
    print(
        f"  the largest entry sits at position 0 in {sum(p == 0 for p in positions)} of "
        f"{len(positions)} (step, layer) cells"
    )


def frequency_section(f: xr.Dataset, corpus: str, steps: list[str], peak: str) -> None:
    """Anisotropy and mean cosine per train-count bucket, and the frequency drift."""
    last = steps[-1]
    labels = bucket_labels(f, corpus)  # as the figures label them
    f = f.sel(corpus=corpus)
    n = f["n_tokens"].sel(step=last).isel(layer=0).values
    print(
        f"  at {last}, per bucket (train count, tokens): "
        + ", ".join(f"{lab} ({int(c)})" for lab, c in zip(labels, n, strict=True))
    )
    for step in dict.fromkeys([peak, last]):
        for var in ("anisotropy", "mean_cosine"):
            print(f"  {var} at {step} per layer (NaN: a bucket of fewer than 2 tokens)")
            for layer in f["layer"].values:
                values = f[var].sel(step=step, layer=layer).values
                print(f"    {int(layer)}: " + " ".join(f"{v:6.3f}" for v in values))
    print("  frequency drift (Pearson / Spearman of log train count and the projection)")
    for step in dict.fromkeys([peak, last]):
        for layer in f["layer"].values:
            c = f.sel(step=step, layer=layer)
            print(
                f"    {step} layer {int(layer)}: "
                + ", ".join(
                    f"{direction} {float(c['drift_pearson'].sel(direction=direction)):+.2f} / "
                    f"{float(c['drift_spearman'].sel(direction=direction)):+.2f}"
                    for direction in c["direction"].values
                )
            )


def main(results: str = "results", positions: str = "all") -> None:
    root = Path(results)
    metrics = root / "metrics"
    for path in sorted((metrics / "dimensions").glob("*.nc")):
        model = path.stem
        d = xr.open_dataset(path).sel(positions=positions)
        a = xr.open_dataset(metrics / "anisotropy" / f"{model}.nc").sel(positions=positions)
        f = xr.open_dataset(metrics / "frequency" / f"{model}.nc").sel(positions=positions)
        steps = [str(s) for s in d["step"].values]
        decode = _decoder(root, model, steps)
        for corpus in d["corpus"].values:
            print(f"=== {model} · {corpus} · positions {positions}")
            print("rogue dimensions")
            rogue_section(a, d, str(corpus))
            print("massive activations")
            massive_section(d, root / "activations" / model, str(corpus), decode)
            print("train-frequency buckets")
            anisotropy = a["anisotropy"].sel(corpus=corpus)
            peak = str(anisotropy["step"][anisotropy.argmax(dim=("step", "layer"))["step"]].values)
            frequency_section(f, str(corpus), steps, peak)


if __name__ == "__main__":
    main(*sys.argv[1:3])
