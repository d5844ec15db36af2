"""The languages study's datasets of one checkpoint: per-language geometry (ID, anisotropy,
divergences), the grammatical vs ungrammatical bootstrap and the score correlation. ID
estimators come in as functions (:mod:`repgeom.languages.estimates`); the ID variables take
their long_name and units from the estimator registry's variable of the function's estimator
(:func:`~repgeom.languages.estimates.id_variable`, the registry's ``gride`` and ``gride_error``
for GRIDE)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr
from scipy import stats

from repgeom.languages.divergence import knn_kl, softmax_kl
from repgeom.languages.estimates import (
    GrideFn,
    IdFn,
    check_rows,
    estimates_of,
    float64_rows,
    gride_variables,
    id_value,
    id_variable,
)
from repgeom.metrics.anisotropy import anisotropy
from repgeom.metrics.estimators import Variable, spread_variable
from repgeom.sampling import seeded_subsample

TokenSource = Mapping[str, np.ndarray] | Callable[[str, int], np.ndarray]
LEVELS = ("sentence", "token")


def _check_sentences(sentence: Mapping[str, np.ndarray]) -> tuple[int, int, int]:
    if not sentence:
        raise ValueError("no languages given")
    shapes = {}
    for lang, a in sentence.items():
        shape = np.shape(a)
        if len(shape) != 3 or 0 in shape:
            raise ValueError(f"sentence vectors of {lang!r} must be (layer, sentence, d), {shape}")
        shapes[lang] = shape
    first = next(iter(shapes))
    n_layer, n_sent, dim = shapes[first]
    for lang, (nl, ns, d) in shapes.items():
        if ns != n_sent:
            raise ValueError(
                f"language {lang!r} has {ns} sentences but {first!r} has {n_sent}; the languages "
                "must be aligned sentence by sentence"
            )
        if (nl, d) != (n_layer, dim):
            raise ValueError(
                f"language {lang!r} has (layer, d) = {(nl, d)} but {first!r} has {(n_layer, dim)}"
            )
        if not np.isfinite(np.asarray(sentence[lang])).all():
            raise ValueError(f"sentence vectors of {lang!r} hold NaN or infinite values")
    return n_layer, n_sent, dim


def _token_reader(token: TokenSource | None, layers: Sequence, dim: int):
    """A function (language, layer position) → validated (n_tokens, d) array, or None."""
    if token is None:
        return None

    def read(lang: str, li: int) -> np.ndarray:
        if callable(token):
            a = token(lang, layers[li])
        else:
            if lang not in token:
                raise ValueError(f"no token vectors for language {lang!r}")
            a = np.asarray(token[lang])
            if a.ndim != 3 or a.shape[0] != len(layers):
                raise ValueError(
                    f"token vectors of {lang!r} must be (layer, token, d) with {len(layers)} "
                    f"layers, got {a.shape}"
                )
            a = a[li]
        a = float64_rows(a)
        if a.ndim != 2 or a.shape[1] != dim or a.shape[0] < 2:
            raise ValueError(
                f"token vectors of {lang!r} at layer {layers[li]} must be (n ≥ 2, {dim}), {a.shape}"
            )
        if not np.isfinite(a).all():
            raise ValueError(f"token vectors of {lang!r} at layer {layers[li]} hold NaN/inf")
        return a

    return read


class _LanguageTable:
    """The estimates of :func:`language_dataset`, filled one layer at a time: every variable
    per (language, layer, level), the points per (language, level), GRIDE per cell."""

    NAMES = ("id", "id_std", "anisotropy", "knn_kl", "softmax_kl")

    def __init__(
        self,
        sentence: Mapping[str, np.ndarray],
        read_tokens: Callable[[str, int], np.ndarray] | None,
        reference: str,
        layers: Sequence,
        id_fn: IdFn,
        gride_fn: GrideFn | None,
        anisotropy_fn: Callable[[np.ndarray], float],
    ) -> None:
        self.sentence, self.read_tokens, self.reference = sentence, read_tokens, reference
        self.langs, self.layers = list(sentence), list(layers)
        self.id_fn, self.gride_fn, self.anisotropy_fn = id_fn, gride_fn, anisotropy_fn
        self.shape = (len(self.langs), len(self.layers), len(LEVELS))
        self.out = {v: np.full(self.shape, np.nan) for v in self.NAMES}
        self.n_points = np.zeros((len(self.langs), len(LEVELS)), dtype=np.int64)
        self.gride: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}
        self.picks: dict[str, np.ndarray] = {}

    def estimate(self, cell: tuple[int, int, int], x: np.ndarray) -> None:
        """ID (mean and spread), GRIDE and anisotropy of the rows x of one cell."""
        self.out["id"][cell], self.out["id_std"][cell], g = estimates_of(
            self.id_fn, self.gride_fn, x
        )
        self.out["anisotropy"][cell] = self.anisotropy_fn(x)
        if g is not None:
            self.gride[cell] = g

    def layer(self, li: int, knn_k: int, token_knn_kl: int, seed: int) -> None:
        """Every language's estimates at layer position ``li``, both levels."""
        ref = float64_rows(self.sentence[self.reference][li])
        ref_all = ref_tok = None
        if self.read_tokens is not None and token_knn_kl > 0:
            ref_all = self.read_tokens(self.reference, li)
            ref_tok = ref_all[self.pick(self.reference, ref_all.shape[0], token_knn_kl, seed)]
        for gi, lang in enumerate(self.langs):
            x = float64_rows(self.sentence[lang][li])
            self.estimate((gi, li, 0), x)
            self.out["knn_kl"][gi, li, 0] = knn_kl(x, ref, k=knn_k)
            self.out["softmax_kl"][gi, li, 0] = softmax_kl(x, ref)
            if self.read_tokens is None:
                continue
            is_ref = lang == self.reference and ref_all is not None
            t = ref_all if is_ref else self.read_tokens(lang, li)
            self.tokens(gi, li, t)
            if ref_tok is not None:
                sub = t[self.pick(lang, t.shape[0], token_knn_kl, seed)]
                self.out["knn_kl"][gi, li, 1] = knn_kl(sub, ref_tok, k=knn_k)

    def tokens(self, gi: int, li: int, t: np.ndarray) -> None:
        """The token-level estimates of language ``gi`` at layer position ``li`` (rows t): the
        same number of tokens at every layer."""
        lang = self.langs[gi]
        if li > 0 and t.shape[0] != self.n_points[gi, 1]:
            raise ValueError(
                f"token vectors of {lang!r} have {t.shape[0]} rows at layer {self.layers[li]} "
                f"but {self.n_points[gi, 1]} at layer {self.layers[0]}; every layer must hold "
                "the same tokens"
            )
        self.n_points[gi, 1] = t.shape[0]
        check_rows(self.id_fn, t.shape[0], f"of {lang!r} at layer {self.layers[li]}", "tokens")
        self.estimate((gi, li, 1), t)

    def pick(self, lang: str, n: int, size: int, seed: int) -> np.ndarray:
        """:func:`_pick` of this table's subsamples."""
        return _pick(self.picks, lang, n, size, seed)

    def data(self, knn_k: int) -> dict[str, tuple]:
        """The dataset variables (GRIDE apart)."""
        dims = ("language", "layer", "level")
        kl_note = "token level NaN unless token_knn_kl > 0 (then on subsamples)"
        id_var = id_variable(self.id_fn)
        spread = spread_variable(id_var)
        out, reference = self.out, self.reference
        return {
            "id": _var(dims, out["id"], *_attrs(id_var), "mean over the ID repeats"),
            "id_std": _var(
                dims, out["id_std"], *_attrs(spread), "NaN when the estimator returns one value"
            ),
            "anisotropy": _var(
                dims, out["anisotropy"], "anisotropy", "1", "share of the centred variance on PC 1"
            ),
            "knn_kl": _var(
                dims,
                out["knn_kl"],
                f"kNN KL divergence from {reference} (k={knn_k})",
                "nat",
                kl_note,
            ),
            "softmax_kl": _var(
                dims,
                out["softmax_kl"],
                f"mean KL(softmax(x) ‖ softmax(x of {reference}))",
                "nat",
                "over aligned sentences; NaN at token level (tokens are not aligned)",
            ),
            "n_points": _var(
                ("language", "level"),
                self.n_points,
                "number of vectors (sentences or tokens)",
                "1",
                "0 at token level when no token vectors were given",
            ),
        }

    def gride_data(self) -> tuple[dict[str, tuple], dict[str, Any]]:
        """The ``gride`` and ``gride_error`` variables and the ``scale`` coordinates (none
        without GRIDE)."""
        if not self.gride:
            return {}, {}
        n_scales = len(next(iter(self.gride.values()))[0])
        values = np.full((2, *self.shape, n_scales), np.nan)
        for (gi, li, lev), (ids, errors) in self.gride.items():
            values[:, gi, li, lev] = ids, errors
        n1 = 2 ** np.arange(n_scales)
        gd = ("language", "layer", "level", "scale")
        note = "on the first ID subsample; NaN where n2 exceeds its distinct points − 1"
        gride_var, error_var = gride_variables()
        data = {
            "gride": _var(gd, values[0], *_attrs(gride_var), note),
            "gride_error": _var(gd, values[1], *_attrs(error_var), note),
        }
        return data, {"scale": n1, "n2": ("scale", 2 * n1)}


def _checked_layers(
    sentence: Mapping[str, np.ndarray],
    reference: str,
    id_fn: IdFn,
    token_knn_kl: int,
    layers: Sequence[int] | None,
) -> tuple[int, list]:
    """(dim, layer labels) of aligned sentence vectors (:func:`_check_sentences`); ValueError
    for an unknown reference, wrong labels, a negative token_knn_kl and an ID sample at least
    the sentences (:func:`~repgeom.languages.estimates.check_rows`)."""
    n_layer, n_sent, dim = _check_sentences(sentence)
    langs = list(sentence)
    for lang in langs:
        check_rows(id_fn, n_sent, f"of {lang!r}", "sentences")
    if reference not in sentence:
        raise ValueError(f"reference language {reference!r} is not among {langs}")
    layers = list(range(n_layer)) if layers is None else list(layers)
    if len(layers) != n_layer:
        raise ValueError(f"{len(layers)} layer labels given for {n_layer} layers")
    if token_knn_kl < 0:
        raise ValueError(f"token_knn_kl must be ≥ 0 (0 = skip), got {token_knn_kl}")
    return dim, layers


def language_dataset(
    sentence: Mapping[str, np.ndarray],
    token: TokenSource | None,
    reference: str,
    id_fn: IdFn,
    anisotropy_fn: Callable[[np.ndarray], float] = anisotropy,
    knn_k: int = 1,
    token_knn_kl: int = 0,
    seed: int = 0,
    layers: Sequence[int] | None = None,
    attrs: Mapping[str, object] | None = None,
    gride_fn: GrideFn | None = None,
) -> xr.Dataset:
    """ID, anisotropy and divergence from ``reference`` per (language, layer, level).

    ``sentence[lang]`` is a (layer, sentence, d) array of sentence vectors, aligned across
    languages (same sentence count, same order). ``token`` is either a mapping lang →
    (layer, token, d) array or a callable ``(lang, layer) -> (token, d)`` array (``layer`` is
    the coordinate value), or None (token level left NaN). Token counts may differ by language.

    Divergences: ``knn_kl`` = kNN estimate of D(language ‖ reference) (:func:`knn_kl`, k =
    ``knn_k``); at token level it is computed only when ``token_knn_kl`` > 0, on seeded random
    subsamples of at most that many tokens per side (one subsample per language, used at every
    layer), and is NaN otherwise. ``softmax_kl`` (:func:`softmax_kl`) needs aligned pairs, so it
    exists at sentence level only and is NaN at token level. The reference's own rows are 0.

    GRIDE over scales n₁ = 1, 2, 4, …, from ``id_fn``'s :class:`IDValues` (the same neighbour
    search as the ID: an :class:`IDFunction` with ``gride_scales``) or from ``gride_fn(x)`` →
    (ids, errors) (e.g. :func:`repgeom.metrics.gride.gride_function`), adds ``gride`` and
    ``gride_error`` with a ``scale`` dimension (coordinate n₁, and n₂ = 2·n₁).

    An :class:`~repgeom.languages.estimates.IDFunction` with repeats > 1 and a sample at least
    the sentences or the tokens of a language is refused, naming ``languages.id_sample``, the
    language and its count (every repeat would be the same rows: a spread of 0).
    """
    dim, layers = _checked_layers(sentence, reference, id_fn, token_knn_kl, layers)
    read_tokens = _token_reader(token, layers, dim)
    table = _LanguageTable(sentence, read_tokens, reference, layers, id_fn, gride_fn, anisotropy_fn)
    table.n_points[:, 0] = np.shape(sentence[reference])[1]
    for li in range(len(layers)):
        table.layer(li, knn_k, token_knn_kl, seed)
    gride, scales = table.gride_data()
    meta = {"reference": reference, "knn_k": knn_k, "token_knn_kl": token_knn_kl, "seed": seed}
    coords = {"language": table.langs, "layer": layers, "level": list(LEVELS), **scales}
    ds = xr.Dataset({**table.data(knn_k), **gride}, coords=coords, attrs={**meta, **(attrs or {})})
    if gride:
        ds["scale"].attrs = {"long_name": "neighbour rank n1 of GRIDE (n2 = 2·n1)", "units": "1"}
    return ds


def _attrs(v: Variable) -> tuple[str, str]:
    """(long_name, units) of a registry variable."""
    return v.long_name, v.units


def _var(dims, values, long_name: str, units: str, comment: str | None = None) -> tuple:
    """A (dims, values, attrs) triple for xr.Dataset with long_name, units and a comment."""
    attrs = {"long_name": long_name, "units": units}
    if comment:
        attrs["comment"] = comment
    return (dims, values, attrs)


def _pick(picks: dict[str, np.ndarray], lang: str, n: int, size: int, seed: int) -> np.ndarray:
    """One seeded subsample of row indices per language (all rows when n ≤ size), drawn once
    and used at every layer."""
    if lang not in picks:
        picks[lang] = seeded_subsample(n, size, seed)
    if picks[lang].size and picks[lang][-1] >= n:
        raise ValueError(f"token count of {lang!r} changed between layers")
    return picks[lang]


def mean_by_language(
    ds: xr.Dataset, var: str = "id", level: str = "sentence", layers: Sequence | None = None
) -> dict[str, float]:
    """Mean of ``var`` over layers (all, or the given labels) for each language."""
    da = ds[var].sel(level=level)
    if layers is not None:
        da = da.sel(layer=list(layers))
    means = da.mean("layer")
    langs = ds["language"].values
    return {str(lang): float(v) for lang, v in zip(langs, means.values, strict=True)}


def _checked_pairs(
    good: np.ndarray,
    bad: np.ndarray,
    n_boot: int,
    alpha: float,
    layers: Sequence[int] | None,
) -> tuple[np.ndarray, np.ndarray, list]:
    """(good, bad, layer labels) of :func:`paired_bootstrap_diff`: ValueError for sides that
    are no finite (layer, sentence, d) arrays of one shape with 2 sentences or more, n_boot < 1,
    alpha outside (0, 1) and wrong layer labels."""
    good = np.asarray(good)
    bad = np.asarray(bad)
    if good.ndim != 3 or good.shape != bad.shape or 0 in good.shape:
        raise ValueError(
            f"good {good.shape} and bad {bad.shape} must be (layer, sentence, d) of equal shape"
        )
    for name, a in (("good", good), ("bad", bad)):
        if not np.isfinite(a).all():
            raise ValueError(f"{name} sentence vectors hold NaN or infinite values")
    n_layer, n = good.shape[:2]
    if n < 2:
        raise ValueError(f"need at least 2 minimal pairs, got {n}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be ≥ 1, got {n_boot}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    layers = list(range(n_layer)) if layers is None else list(layers)
    if len(layers) != n_layer:
        raise ValueError(f"{len(layers)} layer labels given for {n_layer} layers")
    return good, bad, layers


def paired_bootstrap_diff(
    good: np.ndarray,
    bad: np.ndarray,
    id_fn: IdFn,
    n_boot: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
    distinct: bool = True,
    layers: Sequence[int] | None = None,
    attrs: Mapping[str, object] | None = None,
) -> xr.Dataset:
    """ID of grammatical vs ungrammatical sentence vectors per layer, with a paired bootstrap.

    ``good`` and ``bad`` are (layer, sentence, d) arrays whose sentence i form a minimal pair.
    Resampling protocol: ``idx = np.random.default_rng(seed).integers(0, n, (n_boot, n))``;
    replicate b takes sentences ``idx[b]`` on both sides (paired), at every layer, and computes
    ``id_fn`` on each side. With ``distinct=True`` (default) a replicate keeps each drawn sentence
    once (``np.unique(idx[b])``, ≈ 63 % of n): kNN-based ID estimators are undefined on exact
    duplicate points, so the replicate IDs are those of a smaller sample and can sit away from
    the full-sample value (compare ``id_diff`` with ``id_diff_boot_mean``). ``distinct=False``
    passes the resample with its repeats to ``id_fn`` (the textbook bootstrap).

    Output: full-sample ``id`` (side, layer); ``id_low``/``id_high`` percentile band of each
    side's replicates; ``id_diff`` = good − bad on the full sample with the percentile interval
    ``id_diff_low``/``id_diff_high`` at level 1 − alpha; ``id_diff_boot_mean``; and the
    replicates ``id_boot`` (side, boot, layer).
    """
    good, bad, layers = _checked_pairs(good, bad, n_boot, alpha, layers)
    n_layer, n = good.shape[:2]
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    full = np.empty((2, n_layer))
    boot = np.empty((2, n_boot, n_layer))
    for li in range(n_layer):
        sides = (float64_rows(good[li]), float64_rows(bad[li]))
        for s, x in enumerate(sides):
            full[s, li] = id_value(id_fn, x)[0]
        for b in range(n_boot):
            sel = np.unique(idx[b]) if distinct else idx[b]
            for s, x in enumerate(sides):
                boot[s, b, li] = id_value(id_fn, x[sel])[0]
    q = [100 * alpha / 2, 100 * (1 - alpha / 2)]
    side_band = np.percentile(boot, q, axis=1)  # (2 quantiles, side, layer)
    diffs = boot[0] - boot[1]
    diff_band = np.percentile(diffs, q, axis=0)
    conf = f"{100 * (1 - alpha):g}%"
    sl = ("side", "layer")
    id_var = id_variable(id_fn)
    name, units = id_var.long_name, id_var.units
    diff_ci = f"end of the {conf} paired bootstrap interval of the difference"
    diff = f"{name}: grammatical − ungrammatical"
    data = {
        "id": _var(sl, full, name, units, "on all pairs"),
        "id_low": _var(sl, side_band[0], f"{name}: lower end of the {conf} bootstrap band", units),
        "id_high": _var(sl, side_band[1], f"{name}: upper end of the {conf} bootstrap band", units),
        "id_diff": _var("layer", full[0] - full[1], f"{diff}, all pairs", units),
        "id_diff_low": _var("layer", diff_band[0], f"{diff}, lower {diff_ci}", units),
        "id_diff_high": _var("layer", diff_band[1], f"{diff}, upper {diff_ci}", units),
        "id_diff_boot_mean": _var(
            "layer", diffs.mean(axis=0), f"{diff}, mean of the bootstrap replicates", units
        ),
        "id_boot": _var(("side", "boot", "layer"), boot, f"{name}, bootstrap replicate", units),
    }
    meta = {
        "n_pairs": n,
        "n_boot": n_boot,
        "seed": seed,
        "alpha": alpha,
        "distinct": int(distinct),
        "interval": "percentile",
    }
    coords = {"side": ["good", "bad"], "boot": np.arange(n_boot), "layer": layers}
    return xr.Dataset(data, coords=coords, attrs={**meta, **(attrs or {})})


def score_correlation(mean_id: Mapping[str, float], scores: Mapping[str, float]) -> dict:
    """Pearson r and Spearman ρ (with two-sided p-values) between per-language ID and scores.

    Uses the languages present in both mappings (listed under ``languages``; at least 3).
    """
    langs = [lang for lang in mean_id if lang in scores]
    if len(langs) < 3:
        raise ValueError(
            f"only {len(langs)} language(s) have both an ID and a score ({langs}); need ≥ 3"
        )
    a = np.array([mean_id[lang] for lang in langs], dtype=np.float64)
    b = np.array([scores[lang] for lang in langs], dtype=np.float64)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("mean IDs and scores must be finite")
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        raise ValueError("mean IDs or scores are constant; a correlation is undefined")
    pr = stats.pearsonr(a, b)
    sr = stats.spearmanr(a, b)
    return {
        "pearson_r": float(pr.statistic),
        "pearson_p": float(pr.pvalue),
        "spearman_rho": float(sr.statistic),
        "spearman_p": float(sr.pvalue),
        "n": len(langs),
        "languages": langs,
    }
