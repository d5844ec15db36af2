"""Rogue dimensions and massive activations against brute-force float64 numpy, and planted cases."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import xarray as xr

from repgeom.activations.source import ArraySource
from repgeom.metrics.dimensions import (
    Blocks,
    DimensionOptions,
    MassiveAccumulator,
    MassiveResult,
    RogueAccumulator,
    RogueResult,
    layer_dimensions,
    run_two_passes,
)
from repgeom.workflow.config import options, schema_defaults

# ---------------------------------------------------------------------------------------------
# brute force: explicit N × N cosine matrices, one dimension or one deletion at a time


def brute_mean_cosine(x: np.ndarray) -> tuple[float, int]:
    """Mean of the N×N cosine matrix off its diagonal, over the rows of non-zero norm."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1)
    u = x[norms > 0] / norms[norms > 0, None]
    n = len(u)
    cos = u @ u.T
    return float((cos.sum() - np.trace(cos)) / (n * (n - 1))), int((norms == 0).sum())


def brute_contributions(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1)
    u = x[norms > 0] / norms[norms > 0, None]
    n = len(u)
    out = np.empty(x.shape[1])
    for i in range(x.shape[1]):
        pair = np.outer(u[:, i], u[:, i])
        out[i] = (pair.sum() - np.trace(pair)) / (n * (n - 1))
    return out


def brute_standardised(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    x = x[np.linalg.norm(x, axis=1) > 0]
    varies = np.ptp(x, axis=0) > 0  # std() of a constant column can be a rounding error > 0
    z = (x[:, varies] - x[:, varies].mean(axis=0)) / x[:, varies].std(axis=0)
    return brute_mean_cosine(z)[0]


def brute_median_abs(x: np.ndarray) -> float:
    return float(np.median(np.abs(np.asarray(x, dtype=np.float32)).astype(np.float64)))


def chunks(x: np.ndarray, sizes: list[int]):
    """A block factory yielding x in blocks of the given sizes (the last takes the rest)."""
    edges = np.cumsum([0, *sizes])

    def make():
        for a, b in zip(edges[:-1], [*edges[1:-1], len(x)], strict=True):
            yield x[a:b]

    return make


# ---------------------------------------------------------------------------------------------
# the accumulators of layer_dimensions on their two passes over any blocks (an array, or a
# factory of uneven blocks)


def run_rogue(
    blocks: Blocks, top_k: int = 10, without_top: tuple[int, ...] = (1, 3, 10)
) -> RogueResult:
    acc = RogueAccumulator(top_k, without_top)
    run_two_passes(blocks, [acc])
    return acc.result()


def run_massive(
    blocks: Blocks,
    token_id: np.ndarray | None = None,
    position: np.ndarray | None = None,
    absolute: float = 100.0,
    relative: float = 1000.0,
    top_n: int = 10,
) -> MassiveResult:
    acc = MassiveAccumulator(token_id, position, absolute, relative, top_n)
    run_two_passes(blocks, [acc])
    return acc.result()


@pytest.fixture
def anisotropic() -> np.ndarray:
    """Tokens with a non-zero mean in a few dimensions, a constant dimension and zero rows."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 12)) * rng.uniform(0.5, 2.0, size=12)
    x[:, 3] += 4.0
    x[:, 8] -= 2.0
    x[:, 5] = 0.7  # constant over the tokens
    x[[10, 200]] = 0.0  # zero vectors
    return x


# ---------------------------------------------------------------------------------------------
# rogue dimensions


def test_rogue_dimensions_match_brute_force(anisotropic):
    x = anisotropic
    r = run_rogue(x, top_k=5, without_top=(1, 2, 4))
    mc, n_zero = brute_mean_cosine(x)
    contrib = brute_contributions(x)
    assert r.n_tokens == 298 and r.n_zero_norm == n_zero == 2
    assert r.mean_cosine == pytest.approx(mc, abs=1e-12)
    assert r.cosine_contribution.sum() == pytest.approx(mc, abs=1e-12)
    np.testing.assert_allclose(r.cosine_contribution, contrib, rtol=0, atol=1e-12)
    order = np.argsort(-contrib, kind="stable")
    np.testing.assert_array_equal(r.rogue_dimension, order[:5])
    np.testing.assert_allclose(r.rogue_contribution, contrib[order[:5]], atol=1e-12)
    for c, k in enumerate((1, 2, 4)):
        kept = np.delete(x, order[:k], axis=1)
        assert r.mean_cosine_without_rogue[c] == pytest.approx(
            brute_mean_cosine(kept)[0], abs=1e-12
        )
    assert r.n_constant_dimensions == 1
    assert r.standardised_mean_cosine == pytest.approx(brute_standardised(x), abs=1e-12)
    np.testing.assert_array_equal(r.without_top, [1, 2, 4])


def test_rogue_dimensions_stream_like_one_shot(anisotropic):
    x = np.tile(anisotropic, (4, 1))  # 1200 rows: several 512-row sub-blocks
    one = run_rogue(x)
    streamed = run_rogue(chunks(x, [1, 7, 600, 3, 100]))
    for name in ("mean_cosine", "standardised_mean_cosine"):
        assert getattr(streamed, name) == pytest.approx(getattr(one, name), abs=1e-12)
    for name in ("cosine_contribution", "rogue_contribution", "mean_cosine_without_rogue"):
        np.testing.assert_allclose(getattr(streamed, name), getattr(one, name), atol=1e-12)
    np.testing.assert_array_equal(streamed.rogue_dimension, one.rogue_dimension)
    assert streamed.n_zero_norm == one.n_zero_norm == 8
    # float32 blocks (what a store yields) are read exactly, as float64
    x32 = x.astype(np.float32)
    assert run_rogue(x32).mean_cosine == pytest.approx(brute_mean_cosine(x32)[0], abs=1e-12)


def test_planted_rogue_dimension():
    """x_t = c·e_j + g_t, g_t ~ N(0, σ²I_d). C_j estimates (E n_tj)² without bias (i.i.d. tokens),
    with n_tj = (c + g_j)/√((c + g_j)² + Σ_{i≠j} g_i²). To leading order E n_tj = c/√D,
    D = c² + dσ²; expanding ‖x‖^−1 around D^−1/2 to third order in δ = ‖x‖² − D:

        E n_tj ≈ (c/√D)·[1 − σ²/D + 3(4c²σ² + (2d + 8)σ⁴)/(8D²) − 5(24c²σ⁴ + 8dσ⁶)/(16D³)]

    For c = 10, σ = 1, d = 64: c²/D = 0.60976 (leading), (E n_tj)² = 0.61118 (a Monte Carlo over
    2·10⁶ tokens gives 0.61125). Every other dimension has E n_ti = 0 by symmetry, so C_i ≈ 0,
    and without dimension j the tokens are isotropic: mean cosine ≈ 0 (standard error about
    √(2/d)/N). z-scoring removes the offset, so the standardised mean cosine is ≈ 0 too."""
    c, sigma, d, j, n = 10.0, 1.0, 64, 17, 4000
    x = np.random.default_rng(1).normal(scale=sigma, size=(n, d))
    x[:, j] += c
    r = run_rogue(x, top_k=3, without_top=(1,))
    big_d = c * c + d * sigma**2
    leading = c * c / big_d
    expanded = (
        c
        / np.sqrt(big_d)
        * (
            1
            - sigma**2 / big_d
            + 3 * (4 * c * c * sigma**2 + (2 * d + 8) * sigma**4) / (8 * big_d**2)
            - 5 * (24 * c * c * sigma**4 + 8 * d * sigma**6) / (16 * big_d**3)
        )
    ) ** 2
    assert leading == pytest.approx(0.60976, abs=1e-5)
    assert expanded == pytest.approx(0.61118, abs=1e-5)
    assert r.rogue_dimension[0] == j
    # sampling sd of C_j ≈ 2·E n·√(Var n / N) ≈ 2·0.78·√(0.00167/4000) ≈ 0.001
    assert r.rogue_contribution[0] == pytest.approx(expanded, abs=0.004)
    assert r.rogue_contribution[0] == pytest.approx(leading, abs=0.006)
    assert np.abs(np.delete(r.cosine_contribution, j)).max() < 1e-3
    assert abs(r.mean_cosine_without_rogue[0]) < 1e-3
    assert abs(r.standardised_mean_cosine) < 1e-3
    assert r.mean_cosine == pytest.approx(r.cosine_contribution.sum(), abs=1e-12)


def test_zero_norm_rows_are_skipped_and_counted():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 6))
    x[:, 0] += 5.0
    x[3] = 0.0
    x[7] = [3.0, 0, 0, 0, 0, 0]  # nothing left once dimension 0 is deleted
    r = run_rogue(x, top_k=2, without_top=(1,))
    assert r.rogue_dimension[0] == 0
    assert r.n_zero_norm == 1 and r.n_tokens == 49
    assert r.n_zero_norm_without_rogue[0] == 1  # row 7
    kept = np.delete(np.delete(x, 3, axis=0), 0, axis=1)
    assert r.mean_cosine_without_rogue[0] == pytest.approx(brute_mean_cosine(kept)[0], abs=1e-12)
    assert np.isfinite(r.variables()["mean_cosine"][1])
    with pytest.raises(ValueError, match="non-zero norm"):
        run_rogue(np.zeros((5, 4)), top_k=2, without_top=(1,))
    bad = x.copy()
    bad[4, 2] = np.nan
    with pytest.raises(FloatingPointError):
        run_rogue(bad, top_k=2, without_top=(1,))
    with pytest.raises(ValueError, match="dimensions"):
        run_rogue(x, top_k=2, without_top=(6,))


def test_norms_left_after_deleting_a_dominant_dimension_are_exact():
    """Rows whose rogue dimension holds nearly all of ‖x‖² (a massive activation) keep an
    accurate norm once it is deleted: it is summed afresh, not subtracted."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(40, 8))
    x[:, 2] += 3.0
    x[::5, 2] = 1e7  # ‖x‖² ≈ 1e14 against ~7 left: the subtraction would keep ~2 digits
    r = run_rogue(x, top_k=1, without_top=(1,))
    assert r.rogue_dimension[0] == 2
    kept = np.delete(x, 2, axis=1)
    assert r.mean_cosine_without_rogue[0] == pytest.approx(brute_mean_cosine(kept)[0], abs=1e-12)


# ---------------------------------------------------------------------------------------------
# massive activations


@pytest.mark.parametrize(
    "case",
    ["odd", "even", "ties", "zeros", "half_precision", "subnormal"],
)
def test_median_is_exact(case):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(301, 7)).astype(np.float32)  # odd count of entries
    if case == "even":
        x = x[:300]
    elif case == "ties":
        x = rng.integers(-3, 4, size=(200, 9)).astype(np.float32)
    elif case == "zeros":
        x[:250] = 0.0
    elif case == "half_precision":  # many values inside one radix bin of the high 16 bits
        x = (1.0 + rng.integers(0, 8, size=(400, 5)) / 1024).astype(np.float16).astype(np.float32)
    elif case == "subnormal":
        x = (x * np.float32(1e-40)).astype(np.float32)
    m = run_massive(x)
    assert m.median_abs == brute_median_abs(x)
    assert m.max_abs == float(np.abs(x).max())
    assert m.n_entries == x.size
    # streamed in uneven blocks: the same exact numbers
    s = run_massive(chunks(x, [1, 50, 13]))
    assert (s.median_abs, s.max_abs) == (m.median_abs, m.max_abs)


def test_planted_massive_activation():
    rng = np.random.default_rng(4)
    n, d, window = 2000, 48, 100
    x = rng.normal(size=(n, d)).astype(np.float32)
    position = np.arange(n) % window
    token_id = rng.integers(5, 500, size=n)
    token_id[position == 0] = 1  # a BOS token at every window start
    token_id[123] = 42
    x[123, 7] = 3000.0  # the planted one
    x[position == 0, 20] = -1500.0  # a BOS-like massive dimension
    median = brute_median_abs(x)
    m = run_massive(x, token_id=token_id, position=position, top_n=5)
    assert m.median_abs == median
    assert m.max_abs == 3000.0 and (m.max_abs_row, m.max_abs_dimension) == (123, 7)
    assert m.massive_ratio == pytest.approx(3000.0 / median, rel=1e-15)
    assert m.massive_threshold == pytest.approx(max(100.0, 1000.0 * median))
    # brute force: the entries above both thresholds
    mask = (np.abs(x) > 100.0) & (np.abs(x) > 1000.0 * median)
    assert m.n_massive == mask.sum() == 1 + n // window
    np.testing.assert_array_equal(m.massive_count, mask.sum(axis=0))
    assert m.massive_count[7] == 1 and m.massive_count[20] == n // window
    assert (m.massive_row[0], m.massive_dimension[0], m.massive_value[0]) == (123, 7, 3000.0)
    assert (m.massive_token_id[0], m.massive_position[0]) == (42, 123 % window)
    # then the BOS entries, in row order (ties by magnitude)
    np.testing.assert_array_equal(m.massive_row[1:], np.arange(0, 4 * window, window))
    assert (m.massive_value[1:] == -1500.0).all() and (m.massive_token_id[1:] == 1).all()
    assert (m.massive_top_position[0], m.massive_position_count[0]) == (0, n // window)
    assert (m.massive_top_position[1], m.massive_position_count[1]) == (23, 1)
    assert (m.massive_top_position[2:] == -1).all() and (m.massive_position_count[2:] == 0).all()
    assert (m.massive_top_token_id[0], m.massive_token_count[0]) == (1, n // window)
    assert (m.massive_top_token_id[1], m.massive_token_count[1]) == (42, 1)
    # streamed in uneven blocks: identical
    s = run_massive(chunks(x, [700, 1, 300]), token_id, position, top_n=5)
    for name in m.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(s, name), getattr(m, name), err_msg=name)


def test_massive_threshold_band_is_settled_exactly():
    """Entries within a hair of relative × median, where pass 2 cannot decide before the median
    is exact, are settled like the brute force (strictly above)."""
    rng = np.random.default_rng(5)
    x = rng.uniform(0.9, 1.1, size=(500, 20)).astype(np.float32)
    median = brute_median_abs(x)
    threshold = 1000.0 * median
    above = np.argwhere(x > median)[:6]  # replacing entries above the median keeps it
    values = np.float32(threshold) * np.array(
        [1 - 1e-5, 1 - 1e-6, 1, 1 + 1e-6, 1 + 1e-5, 1.02], dtype=np.float64
    )
    for (r, c), v in zip(above, values, strict=True):
        x[r, c] = np.float32(v)
    assert brute_median_abs(x) == median
    m = run_massive(x, absolute=0.0)
    mask = np.abs(x).astype(np.float64) > threshold
    assert 0 < mask.sum() < 6
    assert m.n_massive == mask.sum()
    np.testing.assert_array_equal(m.massive_count, mask.sum(axis=0))
    assert sorted(m.massive_value[: mask.sum()]) == sorted(x[mask].tolist())


def test_massive_refuses_nan_and_pads_without_labels():
    x = np.ones((10, 3), dtype=np.float32)
    x[2, 1] = 500.0
    m = run_massive(x, absolute=100.0, relative=10.0, top_n=2)
    assert m.n_massive == 1 and m.massive_row[0] == 2 and m.massive_position[0] == -1
    assert m.massive_top_token_id.tolist() == [-1, -1]
    assert np.isnan(m.massive_value[1])
    x[0, 0] = np.nan
    with pytest.raises(FloatingPointError):
        run_massive(x)
    zero = run_massive(np.zeros((4, 2), dtype=np.float32))
    assert zero.median_abs == 0.0 and np.isnan(zero.massive_ratio) and zero.n_massive == 0


# ---------------------------------------------------------------------------------------------
# one layer of a store


def test_layer_dimensions_on_a_source_with_rows():
    rng = np.random.default_rng(6)
    hidden = rng.normal(size=(2, 700, 16)).astype(np.float32)
    hidden[1, :, 4] += 8.0
    position = np.arange(700) % 70
    token_id = rng.integers(0, 90, size=700)
    hidden[1, 351, 9] = 2500.0
    source = ArraySource(hidden, position=position, token_id=token_id)
    rows = np.flatnonzero(position != 0)
    o = options(
        DimensionOptions, "metrics.dimensions", {"top_k": 4, "without_top": [1, 3], "top_n": 3}
    )
    out = layer_dimensions(source, 1, rows, o)
    x = hidden[1, rows]
    rogue = run_rogue(x, top_k=4, without_top=(1, 3))
    assert out.rogue.rogue_dimension[0] == 4
    assert out.rogue.mean_cosine == pytest.approx(rogue.mean_cosine, abs=1e-12)
    np.testing.assert_allclose(out.rogue.mean_cosine_without_rogue, rogue.mean_cosine_without_rogue)
    m = out.massive
    assert m.n_massive == 1 and m.massive_row[0] == 351 and m.max_abs_row == 351
    assert m.massive_token_id[0] == token_id[351] and m.massive_position[0] == 351 % 70
    assert m.median_abs == brute_median_abs(x)
    ds = xr.Dataset(out.variables(), coords=out.coords())
    assert ds["rogue_dimension"].dims == ("rogue_rank",)
    assert ds["mean_cosine_without_rogue"].dims == ("without_top",)
    assert ds["massive_count"].dims == ("hidden",) and ds.sizes["hidden"] == 16
    assert ds["massive_row"].dims == ("massive_rank",) and ds.sizes["massive_rank"] == 3
    assert all("long_name" in ds[v].attrs and "units" in ds[v].attrs for v in ds.data_vars)


def test_dimension_options_are_the_schema_section():
    """Every key of metrics.dimensions is a field without a default (defaults live in the
    schema); a top_k or a without_top k the hidden size cannot hold is refused by config key."""
    fields = dataclasses.fields(DimensionOptions)
    assert [f.name for f in fields] == list(schema_defaults("metrics.dimensions"))
    assert all(f.default is dataclasses.MISSING for f in fields)
    o = options(DimensionOptions, "metrics.dimensions", {})
    assert o.attrs()["without_top"] == [1, 3, 10]
    o.check_hidden_size(11)
    with pytest.raises(ValueError, match="metrics.dimensions.without_top"):
        o.check_hidden_size(10)
