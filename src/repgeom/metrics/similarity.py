"""Linear CKA between representations of the same tokens (standard, debiased), no n × n kernel.

Linear CKA (Kornblith et al. 2019) compares two representations X (n, d₁) and Y (n, d₂) of the
same n tokens through their linear kernels K = XXᵀ, L = YYᵀ:
CKA = HSIC(K, L) / √(HSIC(K, K)·HSIC(L, L)). With the features centred (X̃ = X − x̄),
HSIC(K, L) ∝ tr(K̃L̃) of the centred kernels = ‖X̃ᵀỸ‖²_F, so the standard form needs only
d₁ × d₂ cross products. The debiased form uses the unbiased estimator of Song et al. (2012), as
Nguyen, Raghu & Kornblith (2021) do: with K̃, L̃ the kernels with their diagonal zeroed,

    HSIC_u = [tr(K̃L̃) + (1ᵀK̃1)(1ᵀL̃1)/((n−1)(n−2)) − 2/(n−2)·1ᵀK̃L̃1] / (n(n−3)).

It is a U-statistic whose terms are built from differences of rows, so it is unchanged by a shift
of either representation: it is evaluated on the centred rows, where Σx̃ᵢ = 0 gives
tr(K̃L̃) = ‖X̃ᵀỸ‖²_F − Σᵢ aᵢbᵢ, 1ᵀK̃1 = −Σaᵢ, (K̃1)ᵢ = −aᵢ and 1ᵀK̃L̃1 = Σᵢ aᵢbᵢ, with
aᵢ = ‖x̃ᵢ‖² and bᵢ = ‖ỹᵢ‖². Both forms thus come from the same two quantities per pair of
layers: P = ‖X̃ᵀỸ‖²_F = tr(K_cL_c) (the centred kernels' inner product) and a·b. All sums are
float64, whatever the input dtype.

Two exact routes give P for every pair of a group of layers, "feature" (X̃ᵢᵀX̃ⱼ per pair) and
"gram" (each layer's centred Gram once, by row blocks): :func:`choose_route` picks the cheaper.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr

from repgeom.activations.source import LayerSource
from repgeom.metrics.layerwise import layers_to_use
from repgeom.sampling import seeded_subsample

ROUTES = ("auto", "feature", "gram")
GRAM_BLOCK_BYTES = 256 * 2**20  # Gram rows (all layers of a group) held at once by the gram route
MIN_GRAM_BLOCK = 64  # fewer Gram rows per block than this: the gram route is not chosen
STAT_BLOCK = 4096  # rows converted to float64 at a time for the row statistics

ATTRS = {
    "cka_layers": ("linear CKA between layers (Kornblith et al. 2019)", "1"),
    "cka_layers_debiased": (
        "linear CKA between layers, unbiased HSIC (Song et al. 2012; Nguyen et al. 2021)",
        "1",
    ),
    "cka_to_final": ("linear CKA with the same layer of the final checkpoint", "1"),
    "cka_to_final_debiased": (
        "linear CKA with the same layer of the final checkpoint, unbiased HSIC",
        "1",
    ),
    "n_tokens": ("tokens used", "tokens"),
}


class _Layer:
    """One representation (n, d): its rows as given, their float64 mean and squared norms ‖x̃ᵢ‖²."""

    def __init__(self, x: np.ndarray, name: str) -> None:
        x = np.asarray(x)
        if x.ndim != 2:
            raise ValueError(f"{name} must be a 2-D (tokens, features) array, got shape {x.shape}")
        self.x = x
        self.name = name
        self.n, self.dim = x.shape
        self.mean = x.mean(axis=0, dtype=np.float64)
        self.sq_norms = np.empty(self.n)
        buf = np.empty(min(self.n, STAT_BLOCK) * self.dim)
        for start in range(0, self.n, STAT_BLOCK):
            c = self.centred(start, start + STAT_BLOCK, out=buf)
            self.sq_norms[start : start + len(c)] = np.einsum("ij,ij->i", c, c)
        total = self.sq_norms.sum()
        if not np.isfinite(total):
            raise FloatingPointError(f"{name} holds NaN, infinite or overflowing values")
        if total == 0:
            raise ValueError(f"{name} is the same vector for every token: its CKA is undefined")

    def centred(
        self, start: int = 0, stop: int | None = None, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Rows start…stop−1 minus the column mean in float64, in one pass; written to the front
        of the flat float64 buffer ``out`` when given (reusing a buffer spares the page faults
        of a fresh allocation, which cost more than the subtraction)."""
        rows = self.x[start:stop]
        if out is None:
            return np.subtract(rows, self.mean, dtype=np.float64)
        view = out[: rows.shape[0] * self.dim].reshape(rows.shape[0], self.dim)
        return np.subtract(rows, self.mean, out=view)


def _layers(arrays: Sequence[np.ndarray], names: Sequence[str]) -> list[_Layer]:
    """Wrap the arrays, refusing different row counts (naming both)."""
    out = [_Layer(x, name) for x, name in zip(arrays, names, strict=True)]
    for layer in out[1:]:
        if layer.n != out[0].n:
            raise ValueError(
                f"{out[0].name} has {out[0].n} rows and {layer.name} has {layer.n}: "
                "CKA compares representations of the same tokens"
            )
    return out


def choose_route(n: int, dims: Sequence[int], block_bytes: int | None = None) -> str:
    """The cheaper exact route, "feature" or "gram", for all pairs of layers of widths ``dims``.

    Counted in multiply-adds: the feature route costs n·(Σd)²/2 (n·dᵢ·dⱼ per pair i < j, n·dᵢ²/2
    per layer with itself), the gram route n²·Σd/2 (each layer's Gram once, upper block triangle)
    plus n²·g²/4 (the g × g pair sums). Both are BLAS-3 products, so the count decides; the gram
    route is only taken when a block holds at least ``MIN_GRAM_BLOCK`` rows of every Gram
    within ``block_bytes`` (default ``GRAM_BLOCK_BYTES``), since smaller blocks spend their time
    converting rows rather than multiplying. Roughly: gram when n < g·d for g layers of width d.
    """
    block_bytes = GRAM_BLOCK_BYTES if block_bytes is None else block_bytes
    g, d = len(dims), float(sum(dims))
    feature = n * d * d / 2
    gram = float(n) * n * (d / 2 + g * g / 4)
    rows = block_bytes // (8 * g * max(n, 1))
    return "gram" if gram < feature and rows >= MIN_GRAM_BLOCK else "feature"


def _feature_products(group: Sequence[_Layer]) -> np.ndarray:
    """P[i, j] = ‖X̃ᵢᵀX̃ⱼ‖²_F from the d × d cross products, each pair once."""
    g, n = len(group), group[0].n
    widest = max(layer.dim for layer in group)
    left, right, out = np.empty(n * widest), np.empty(n * widest), np.empty(widest * widest)
    p = np.empty((g, g))
    for i in range(g):
        ci = group[i].centred(out=left)
        cross = np.matmul(ci.T, ci, out=out[: ci.shape[1] ** 2].reshape(ci.shape[1], -1))
        p[i, i] = np.vdot(cross, cross)
        for j in range(i + 1, g):
            cj = group[j].centred(out=right)
            shape = (ci.shape[1], cj.shape[1])
            cross = np.matmul(ci.T, cj, out=out[: shape[0] * shape[1]].reshape(shape))
            p[i, j] = p[j, i] = np.vdot(cross, cross)
    return p


def _gram_products(group: Sequence[_Layer], block_bytes: int) -> np.ndarray:
    """P[i, j] = ⟨GᵢGⱼ⟩ of the centred Grams Gᵢ = X̃ᵢX̃ᵢᵀ, by blocks of rows of their upper triangle.

    For rows r₀…r₁ of every Gram, the block on the diagonal (counted once) and the block right of
    it (counted twice, for its mirror below the diagonal) are stacked layer by layer, and one
    g × g product of the stacks adds their elementwise inner products for all pairs.
    """
    g, n = len(group), group[0].n
    rows = int(max(1, min(n, block_bytes // (8 * g * n))))
    rows_buf = np.empty(n * max(layer.dim for layer in group))
    gram_buf = np.empty(g * rows * n)
    p = np.zeros((g, g))
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        b = r1 - r0
        diag = gram_buf[: g * b * b].reshape(g, b, b)
        off = gram_buf[g * b * b : g * b * (n - r0)].reshape(g, b, n - r1)
        for k, layer in enumerate(group):
            c = layer.centred(r0, out=rows_buf)
            np.matmul(c[:b], c[:b].T, out=diag[k])
            np.matmul(c[:b], c[b:].T, out=off[k])
        dm = diag.reshape(g, -1)
        om = off.reshape(g, -1)
        p += dm @ dm.T
        p += 2.0 * (om @ om.T)
    return (p + p.T) / 2


@dataclass(frozen=True)
class _Products:
    """What both CKA forms of a group of layers need: P (g × g) and the rows' ‖x̃ᵢ‖² (g × n)."""

    p: np.ndarray
    sq_norms: np.ndarray

    @classmethod
    def of(cls, group: Sequence[_Layer], route: str) -> _Products:
        if route not in ROUTES:
            raise ValueError(f"route must be one of {ROUTES}, got {route!r}")
        n = group[0].n
        if route == "auto":
            route = choose_route(n, [layer.dim for layer in group])
        if route == "gram":
            p = _gram_products(group, GRAM_BLOCK_BYTES)
        else:
            p = _feature_products(group)
        if not np.isfinite(p).all():
            raise FloatingPointError("the CKA sums overflowed")
        return cls(p, np.stack([layer.sq_norms for layer in group]))

    @property
    def n(self) -> int:
        return self.sq_norms.shape[1]

    def hsic_unbiased(self) -> np.ndarray:
        """Unbiased HSIC (Song et al. 2012) of every pair, on the centred rows."""
        n = self.n
        if n < 4:
            raise ValueError(f"the debiased CKA needs at least 4 tokens, got {n}")
        a = self.sq_norms
        ab = a @ a.T  # Σᵢ aᵢbᵢ = 1ᵀK̃L̃1
        s = a.sum(axis=1)  # −1ᵀK̃1
        trace = self.p - ab  # tr(K̃L̃)
        return (trace + np.outer(s, s) / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * ab) / (n * (n - 3))

    def cka(self, debiased: bool) -> np.ndarray:
        """CKA of every pair (g × g); the diagonal is exactly 1 (NaN where a debiased self-HSIC
        is not positive, so that the form is undefined)."""
        h = self.hsic_unbiased() if debiased else self.p
        self_h = np.diag(h).copy()
        with np.errstate(invalid="ignore", divide="ignore"):
            out = h / np.sqrt(np.outer(self_h, self_h))
        out[:, self_h <= 0] = np.nan
        out[self_h <= 0, :] = np.nan
        np.fill_diagonal(out, np.where(self_h > 0, 1.0, np.nan))
        return out


def linear_cka(x: np.ndarray, y: np.ndarray, debiased: bool = False) -> float:
    """Linear CKA of two representations (n, d₁), (n, d₂) of the same n tokens (rows).

    Invariant to rotations, isotropic scaling and shifts of either. ``debiased`` uses the
    unbiased HSIC estimator (needs n ≥ 4), which stays near 0 for unrelated representations
    when n is small against the widths, where the standard form does not.
    """
    group = _layers([x, y], ["x", "y"])
    return float(_Products.of(group, "feature").cka(debiased)[0, 1])


def cka_matrices(
    layers: Sequence[np.ndarray], route: str = "auto"
) -> tuple[np.ndarray, np.ndarray | None]:
    """Standard and debiased CKA (L × L each) of all pairs of layers from one set of products.

    The debiased matrix is None with fewer than 4 tokens. ``route``: "auto" (by
    :func:`choose_route`), "feature" or "gram"; both are exact.
    """
    group = _layers(layers, [f"layer {i}" for i in range(len(layers))])
    prod = _Products.of(group, route)
    return prod.cka(False), (prod.cka(True) if prod.n >= 4 else None)


def cka_matrix(
    layers: Sequence[np.ndarray], debiased: bool = False, route: str = "auto"
) -> np.ndarray:
    """CKA (L × L, symmetric, diagonal exactly 1) of every pair of layers of the same tokens.

    Each layer's centring and row statistics are computed once, and the pair products by the
    cheaper exact route (:func:`choose_route`) unless ``route`` forces "feature" or "gram".
    """
    group = _layers(layers, [f"layer {i}" for i in range(len(layers))])
    return _Products.of(group, route).cka(debiased)


def _reference_cka(
    pairs: Iterable[tuple[str, np.ndarray, np.ndarray]], route: str
) -> tuple[np.ndarray, np.ndarray, int]:
    """(standard, debiased CKA, rows) of each (name, layer, its reference) pair, both forms from
    one set of products per pair."""
    standard, debiased, n = [], [], 0
    for name, x, r in pairs:
        prod = _Products.of(_layers([x, r], (name, f"reference {name}")), route)
        standard.append(prod.cka(False)[0, 1])
        debiased.append(prod.cka(True)[0, 1])
        n = prod.n
    return np.array(standard), np.array(debiased), n


def cka_to_reference(
    layers: Sequence[np.ndarray],
    reference_layers: Sequence[np.ndarray],
    debiased: bool = False,
    route: str = "auto",
) -> np.ndarray:
    """CKA of each layer with the same layer of a reference (e.g. the final checkpoint), (L,)."""
    if len(layers) != len(reference_layers):
        raise ValueError(
            f"{len(layers)} layers against {len(reference_layers)} reference layers: "
            "each layer needs its reference"
        )
    pairs = zip([f"layer {i}" for i in range(len(layers))], layers, reference_layers, strict=True)
    return _reference_cka(pairs, route)[1 if debiased else 0]


def _var(dims: tuple[str, ...], values: np.ndarray | int, name: str) -> tuple:
    long_name, units = ATTRS[name]
    return (dims, np.asarray(values), {"long_name": long_name, "units": units})


def cka_layers_dataset(
    source: LayerSource,
    rows: np.ndarray | None = None,
    layers: Sequence[int] | None = None,
    route: str = "auto",
) -> xr.Dataset:
    """CKA between every pair of layers of one store on the given rows (None: all tokens);
    ``layers`` as the config gives them (None: all; negative counts from the end).

    Variables ``cka_layers`` and ``cka_layers_debiased`` (layer, layer_other), scalar
    ``n_tokens``. Each layer is read once (float32) and held until the products are formed.
    """
    use = layers_to_use(source, layers)
    return _layers_dataset([source.read(layer, rows) for layer in use], use, route)


def _layers_dataset(arrays: Sequence[np.ndarray], use: Sequence[int], route: str) -> xr.Dataset:
    """:func:`cka_layers_dataset` of layers already read."""
    prod = _Products.of(_layers(arrays, [f"layer {v}" for v in use]), route)
    dims = ("layer", "layer_other")
    ds = xr.Dataset(
        {
            "cka_layers": _var(dims, prod.cka(False), "cka_layers"),
            "cka_layers_debiased": _var(dims, prod.cka(True), "cka_layers_debiased"),
        },
        coords={"layer": use, "layer_other": use},
    )
    ds["n_tokens"] = _var((), prod.n, "n_tokens")
    return ds


def _describe(source: LayerSource, role: str) -> str:
    path = getattr(source, "path", None)
    return f"{role} {str(path)!r}" if path is not None else f"{role} ({type(source).__name__})"


def check_same_tokens(
    source: LayerSource, final: LayerSource, rows: np.ndarray | None = None
) -> None:
    """Refuse (ValueError naming both stores) two stores whose selected rows hold other tokens."""
    here, there = _describe(source, "store"), _describe(final, "final-checkpoint store")
    for field in ("token_id", "sequence", "position"):
        a, b = np.asarray(getattr(source, field)), np.asarray(getattr(final, field))
        if rows is not None:
            if int(np.max(rows, initial=-1)) >= min(len(a), len(b)):
                raise ValueError(
                    f"{here} has {len(a)} tokens and {there} {len(b)}: "
                    f"the selected rows reach row {int(np.max(rows))}"
                )
            a, b = a[rows], b[rows]
        if a.shape != b.shape:
            raise ValueError(
                f"{here} and {there} hold different tokens: {len(a)} against {len(b)} rows"
            )
        differ = int((a != b).sum())
        if differ:
            raise ValueError(
                f"{here} and {there} hold different tokens: {field} differs at {differ} of "
                f"{len(a)} selected rows"
            )


def cka_to_final_dataset(
    source: LayerSource,
    final: LayerSource,
    rows: np.ndarray | None = None,
    layers: Sequence[int] | None = None,
    route: str = "auto",
) -> xr.Dataset:
    """CKA of each layer of a store with the same layer of the final checkpoint's store.

    Both stores must hold the same tokens at the selected rows (token_id, sequence, position).
    Variables ``cka_to_final`` and ``cka_to_final_debiased`` (layer), scalar ``n_tokens``; one
    layer of each store is read at a time.
    """
    check_same_tokens(source, final, rows)
    use = layers_to_use(source, layers)
    return _to_final_dataset((source.read(layer, rows) for layer in use), final, use, rows, route)


def _to_final_dataset(
    arrays: Iterable[np.ndarray],
    final: LayerSource,
    use: Sequence[int],
    rows: np.ndarray | None,
    route: str,
) -> xr.Dataset:
    """:func:`cka_to_final_dataset` of a store's layers ``use`` given as ``arrays`` (read as
    iterated), against the final store's same layers and rows."""
    missing = sorted(set(use) - set(final.layers))
    if missing:
        raise ValueError(f"layers {missing} are not in the {_describe(final, 'final store')}")
    pairs = ((f"layer {v}", x, final.read(v, rows)) for v, x in zip(use, arrays, strict=True))
    standard, debiased, n = _reference_cka(pairs, route)
    ds = xr.Dataset(
        {
            "cka_to_final": _var(("layer",), standard, "cka_to_final"),
            "cka_to_final_debiased": _var(("layer",), debiased, "cka_to_final_debiased"),
        },
        coords={"layer": use},
    )
    ds["n_tokens"] = _var((), n, "n_tokens")
    return ds


@dataclass(frozen=True)
class SimilarityOptions:
    """The config's ``metrics.similarity`` (its defaults filled from the schema by the workflow):
    ``sample`` tokens of the seeded subsample (seed ``seed``), ``layers`` None = all (negative
    counts from the end)."""

    sample: int
    seed: int
    layers: tuple[int, ...] | None

    def __post_init__(self) -> None:
        if self.sample < 4:
            raise ValueError(
                f"metrics.similarity.sample must be at least 4 (the debiased CKA needs 4 tokens), "
                f"got {self.sample}"
            )


def similarity_rows(source: LayerSource, options: SimilarityOptions) -> np.ndarray:
    """The token rows every checkpoint of a model uses: the seeded subsample of ``sample`` rows
    of the store (all rows when it holds no more), as the intrinsic dimension draws them."""
    return seeded_subsample(source.n_tokens, options.sample, options.seed)


def similarity_dataset(
    source: LayerSource,
    final: LayerSource,
    options: SimilarityOptions,
    where: str = "",
    route: str = "auto",
) -> xr.Dataset:
    """CKA between the layers of one store and of each layer with the same layer of the final
    checkpoint's store, on the same seeded rows of both.

    Variables ``cka_layers``, ``cka_layers_debiased`` (layer, layer_other), ``cka_to_final``,
    ``cka_to_final_debiased`` (layer) and scalar ``n_tokens``; attrs ``sample`` and ``seed``.
    Stores holding other tokens (token_id, sequence or position anywhere) are refused with a
    ValueError starting with ``where`` (e.g. the model, step and corpus).
    """
    try:
        check_same_tokens(source, final)
        layers = layers_to_use(source, options.layers)
        rows = similarity_rows(source, options)
        if len(rows) < 4:
            raise ValueError(f"{len(rows)} token(s) in the store; CKA needs at least 4")
        use = None if len(rows) == source.n_tokens else rows  # every row: read whole layers
        arrays = [source.read(layer, use) for layer in layers]  # each layer read once
        ds = xr.merge(
            [
                _layers_dataset(arrays, layers, route),
                _to_final_dataset(arrays, final, layers, use, route),
            ],
            compat="equals",  # n_tokens of both
            join="exact",
        )
    except (ValueError, FloatingPointError) as err:
        raise type(err)(f"{where}: {err}" if where else str(err)) from err
    ds.attrs = {"sample": options.sample, "seed": options.seed}
    return ds
