"""Frequency-stratified geometry against brute-force float64 numpy, and a planted drift."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from repgeom.activations.source import ArraySource
from repgeom.metrics.dimensions import DimensionOptions, layer_dimensions, run_two_passes
from repgeom.metrics.frequency import (
    FrequencyOptions,
    FrequencyResult,
    assign_buckets,
    centred_eigvals,
    count_of,
    drift_correlations,
    fix_sign,
    frequency_accumulator,
    log_edges,
    principal_direction,
    principal_direction_of,
    token_counts,
)
from repgeom.metrics.moments import Moments
from repgeom.sampling import seeded_subsample
from repgeom.workflow.config import options, schema_defaults


def frequency_options(**section) -> FrequencyOptions:
    return options(FrequencyOptions, "metrics.frequency", section)


def dimension_options(**section) -> DimensionOptions:
    return options(DimensionOptions, "metrics.dimensions", section)


def frequency_of_layer(
    source: ArraySource,
    layer: int,
    counts: np.ndarray,
    o: FrequencyOptions,
    rows: np.ndarray | None = None,
    directions: tuple[np.ndarray, np.ndarray] | None = None,
) -> FrequencyResult:
    """The frequency analysis as the geometry job runs it (repgeom.metrics.origins.layer_origins):
    its accumulator fed the two reads of layer_dimensions."""
    acc = frequency_accumulator(source, layer, counts, o, rows, directions)
    layer_dimensions(source, layer, rows, dimension_options(), also=[acc])
    return acc.result()


# ---------------------------------------------------------------------------------------------
# brute force


def brute_mean_cosine(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1)
    u = x[norms > 0] / norms[norms > 0, None]
    n = len(u)
    cos = u @ u.T
    return float((cos.sum() - np.trace(cos)) / (n * (n - 1)))


def brute_spectrum(x: np.ndarray) -> tuple[float, float]:
    """(anisotropy, RankMe) from the singular values of the explicitly centred rows."""
    x = np.asarray(x, dtype=np.float64)
    s = np.linalg.svd(x - x.mean(axis=0), compute_uv=False)
    p = s[s > 1e-12 * s[0]] / s.sum()
    return float(s[0] ** 2 / (s**2).sum()), float(np.exp(-(p * np.log(p)).sum()))


def brute_bucket(count: int, edges: np.ndarray) -> int:
    """Bucket 1…B of a positive count: the last edge at or below it, the top edge included."""
    if count >= edges[-1]:
        return len(edges) - 1
    return max(i for i in range(1, len(edges)) if edges[i - 1] <= count)


@pytest.fixture
def corpus():
    """A Zipfian train split over 60 ids (some never drawn), and a store of 900 tokens of
    dimension 12 whose first coordinate grows with log frequency; ids 60…64 are beyond the
    counts (unseen)."""
    rng = np.random.default_rng(0)
    vocab = 60
    train = rng.zipf(1.4, size=30000)
    train = train[train < vocab]
    counts = token_counts(train, vocab)
    n, d = 900, 12
    token_id = rng.integers(0, vocab + 5, size=n)
    log_f = np.log(np.maximum(count_of(token_id, counts), 1))
    x = rng.normal(size=(n, d))
    x[:, 0] += 0.8 * log_f
    x[:, 1] += 2.0
    x[[5, 77]] = 0.0  # zero vectors
    return counts, token_id, x.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# counts and buckets


def test_counts_edges_and_buckets():
    counts = token_counts(np.array([1, 1, 2, 2, 2, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5]), 8)
    np.testing.assert_array_equal(counts, [0, 2, 3, 0, 0, 11, 0, 0])
    edges = log_edges(counts, 3)
    np.testing.assert_allclose(edges, np.exp(np.linspace(np.log(2), np.log(11), 4)))
    ids = np.array([0, 1, 2, 5, 7, 9])  # 9 is beyond the counts
    c = count_of(ids, counts)
    np.testing.assert_array_equal(c, [0, 2, 3, 11, 0, 0])
    b = assign_buckets(c, edges, "bucket")
    expected = [brute_bucket(int(v), edges) if v > 0 else 0 for v in c]
    np.testing.assert_array_equal(b, expected)
    np.testing.assert_array_equal(assign_buckets(c, edges, "exclude"), np.where(c > 0, b, -1))
    with pytest.raises(ValueError, match="unseen"):
        dataclasses.replace(frequency_options(), unseen="drop")
    with pytest.raises(ValueError, match="positive train count"):
        log_edges(np.zeros(4), 3)


def test_bucket_of_every_count_like_brute_force():
    counts = np.arange(0, 3000)
    edges = log_edges(counts, 7)
    b = assign_buckets(counts, edges)
    assert b[0] == 0
    np.testing.assert_array_equal(b[1:], [brute_bucket(int(v), edges) for v in counts[1:]])


# ---------------------------------------------------------------------------------------------
# per-bucket geometry


def _bucket_rows(counts, token_id, o):
    c = count_of(token_id, counts)
    return assign_buckets(c, log_edges(counts, o.n_buckets), o.unseen), c


def test_buckets_match_brute_force_all_tokens(corpus):
    counts, token_id, x = corpus
    o = frequency_options(n_buckets=4, tokens_per_bucket=10_000, direction_sample=None)
    r = frequency_of_layer(ArraySource(x[None], token_id=token_id), 0, counts, o)
    label, _ = _bucket_rows(counts, token_id, o)
    np.testing.assert_array_equal(r.bucket, np.arange(5))
    for i, b in enumerate(r.bucket):
        xb = x[label == b]
        assert r.n_tokens[i] == len(xb) == r.n_spectrum_tokens[i]
        assert r.n_zero_norm[i] == int((np.abs(xb).sum(axis=1) == 0).sum())
        assert r.mean_cosine[i] == pytest.approx(brute_mean_cosine(xb), abs=1e-12)
        anis, rank = brute_spectrum(xb)
        assert r.anisotropy[i] == pytest.approx(anis, rel=1e-10)
        assert r.rankme[i] == pytest.approx(rank, rel=1e-9)
    assert r.n_zero_norm.sum() == 2
    assert r.n_tokens.sum() == len(x)
    assert r.count_low[0] == r.count_high[0] == 0
    np.testing.assert_allclose(r.count_low[1:], log_edges(counts, 4)[:-1])


def test_buckets_subsample_equal_sizes(corpus):
    """Spectra come from the documented seeded subsample: tokens_per_bucket per bucket (here
    below d, so the Gram route), the whole bucket when it holds fewer."""
    counts, token_id, x = corpus
    o = frequency_options(n_buckets=3, tokens_per_bucket=10, unseen="exclude", seed=4)
    r = frequency_of_layer(ArraySource(x[None], token_id=token_id), 0, counts, o)
    label, _ = _bucket_rows(counts, token_id, o)
    np.testing.assert_array_equal(r.bucket, [1, 2, 3])
    for i, b in enumerate(r.bucket):
        pool = np.flatnonzero(label == b)
        sample = seeded_subsample(pool, 10, 4, repeat=b)
        assert r.n_spectrum_tokens[i] == len(sample) == min(10, len(pool))
        anis, rank = brute_spectrum(x[sample])
        assert r.anisotropy[i] == pytest.approx(anis, rel=1e-10)
        assert r.rankme[i] == pytest.approx(rank, rel=1e-9)
        assert r.mean_cosine[i] == pytest.approx(brute_mean_cosine(x[pool]), abs=1e-12)


def test_centred_eigvals_gram_and_scatter_routes_agree():
    x = np.random.default_rng(1).normal(size=(9, 20)) + 3.0
    gram = centred_eigvals(x)  # n ≤ d: 9 × 9 Gram
    scatter = Moments.of([x], 20).eigvalsh()  # the d × d route
    np.testing.assert_allclose(gram, scatter[:9], rtol=1e-10, atol=1e-10)
    s = np.linalg.svd(x - x.mean(axis=0), compute_uv=False)
    np.testing.assert_allclose(gram, s**2, rtol=1e-10, atol=1e-10)


def test_empty_and_tiny_buckets_are_nan(corpus):
    counts, token_id, x = corpus
    token_id = np.full_like(token_id, int(np.argmax(counts)))  # every token in the top bucket
    token_id[0] = 60  # one unseen token
    o = frequency_options(n_buckets=3, direction_sample=None)
    r = frequency_of_layer(ArraySource(x[None], token_id=token_id), 0, counts, o)
    assert r.n_tokens.tolist() == [1, 0, 0, 899]
    assert np.isnan(r.mean_cosine[:3]).all() and np.isnan(r.anisotropy[:3]).all()
    assert np.isnan(r.rankme[:3]).all() and np.isfinite(r.mean_cosine[3])


# ---------------------------------------------------------------------------------------------
# frequency drift


def test_drift_matches_brute_force(corpus):
    counts, token_id, x = corpus
    o = frequency_options(n_buckets=4, direction_sample=None)
    r = frequency_of_layer(ArraySource(x[None], token_id=token_id), 0, counts, o)
    c = count_of(token_id, counts)
    x64 = x.astype(np.float64)
    mean_dir = x64.mean(axis=0) / np.linalg.norm(x64.mean(axis=0))
    pc1 = fix_sign(np.linalg.svd(x64 - x64.mean(axis=0))[2][0])
    assert np.abs(pc1).argmax() == 0 and pc1[0] > 0
    seen = c > 0
    log_c = np.log(c[seen])
    assert r.n_drift_tokens == seen.sum() < len(x)
    assert r.n_direction_tokens == len(x)
    for j, u in enumerate((mean_dir, pc1)):
        p = x64[seen] @ u
        assert r.drift_pearson[j] == pytest.approx(stats.pearsonr(log_c, p)[0], abs=1e-10)
        assert r.drift_spearman[j] == pytest.approx(stats.spearmanr(log_c, p)[0], abs=1e-10)
    # planted: coordinate 0 grows with log frequency, so both correlations are clearly positive
    assert (r.drift_pearson > 0.5).all() and (r.drift_spearman > 0.5).all()
    # the same directions given: one read, the same correlations
    given = frequency_of_layer(
        ArraySource(x[None], token_id=token_id), 0, counts, o, directions=(mean_dir, pc1)
    )
    np.testing.assert_allclose(given.drift_pearson, r.drift_pearson, atol=1e-10)
    np.testing.assert_allclose(given.drift_spearman, r.drift_spearman, atol=1e-10)
    assert given.n_direction_tokens == 0


def test_drift_with_a_sampled_principal_direction_and_rows(corpus):
    counts, token_id, x = corpus
    source = ArraySource(x[None], token_id=token_id)
    rows = np.arange(0, 900, 2)
    o = frequency_options(n_buckets=4, direction_sample=200, seed=3)
    r = frequency_of_layer(source, 0, counts, o, rows=rows)
    sample = seeded_subsample(len(rows), 200, 3, repeat=o.n_buckets + 1)
    xs = x[rows][sample].astype(np.float64)
    pc1 = fix_sign(np.linalg.svd(xs - xs.mean(axis=0))[2][0])
    c = count_of(token_id[rows], counts)
    p = x[rows][c > 0].astype(np.float64) @ pc1
    assert r.n_direction_tokens == 200
    assert r.drift_pearson[1] == pytest.approx(stats.pearsonr(np.log(c[c > 0]), p)[0], abs=1e-9)
    assert r.n_tokens.sum() == len(rows)


def test_drift_correlations_and_principal_direction():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=50), rng.normal(size=50)
    b[:10] = b[0]  # ties
    p, s = drift_correlations(a, b)
    assert p == pytest.approx(stats.pearsonr(a, b)[0], abs=1e-12)
    assert s == pytest.approx(stats.spearmanr(a, b)[0], abs=1e-12)
    assert np.isnan(drift_correlations(a, np.ones(50))).all()
    # Lanczos above 256 dimensions equals the full eigendecomposition, sign fixed
    y = rng.normal(size=(400, 300)) * np.linspace(3.0, 1.0, 300)
    y[:, 0] *= 2.0  # a clear top direction (Lanczos converges fast; the check stays exact)
    scatter = Moments.of([y], 300).scatter()
    v = principal_direction(scatter, seed=0)
    w = fix_sign(np.linalg.eigh(scatter)[1][:, -1])
    np.testing.assert_allclose(v, w, atol=1e-8)
    assert np.linalg.norm(v) == pytest.approx(1.0)
    np.testing.assert_allclose(principal_direction(scatter, seed=9), v, atol=1e-8)
    # from the rows, never forming the scatter (n > d and n < d)
    for rows in (y, y[:120]):
        top = fix_sign(np.linalg.svd(rows - rows.mean(axis=0))[2][0])
        np.testing.assert_allclose(principal_direction_of(rows, seed=1), top, atol=1e-8)


def test_result_is_a_dataset(corpus):
    counts, token_id, x = corpus
    r = frequency_of_layer(ArraySource(x[None], token_id=token_id), 0, counts, frequency_options())
    ds = xr.Dataset(r.variables(), coords=r.coords())
    assert ds["mean_cosine"].dims == ("bucket",) and ds.sizes["bucket"] == 9
    assert ds["drift_pearson"].dims == ("direction",)
    assert list(ds["direction"].values) == ["mean", "principal"]
    assert all("long_name" in ds[v].attrs and "units" in ds[v].attrs for v in ds.data_vars)


def test_shares_the_reads_of_layer_dimensions(corpus):
    """The frequency accumulator rides on the two reads of layer_dimensions: same results."""
    counts, token_id, x = corpus
    source = ArraySource(x[None], token_id=token_id, position=np.arange(len(x)) % 30)
    rows = np.flatnonzero(source.position != 0)
    o = frequency_options(n_buckets=3, tokens_per_bucket=40, direction_sample=300)
    acc = frequency_accumulator(source, 0, counts, o, rows)
    dims = layer_dimensions(source, 0, rows, dimension_options(), also=[acc])
    alone = frequency_accumulator(source, 0, counts, o, rows)
    run_two_passes(lambda: source.iter_blocks(0, rows), [alone])
    shared, alone = acc.result(), alone.result()
    for name in shared.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(shared, name), getattr(alone, name), err_msg=name)
    assert dims.rogue.n_tokens + dims.rogue.n_zero_norm == len(rows)


def test_frequency_options_are_the_schema_section():
    """Every key of metrics.frequency is a field without a default (defaults live in the
    schema), and the options go into attrs netCDF can hold."""
    fields = dataclasses.fields(FrequencyOptions)
    assert [f.name for f in fields] == list(schema_defaults("metrics.frequency"))
    assert all(f.default is dataclasses.MISSING for f in fields)
    assert frequency_options(direction_sample=None).attrs()["direction_sample"] == "all"


def test_split_counts_leave_padding_out(tmp_path):
    from repgeom.data.tokens import Windows, write_tokens
    from repgeom.metrics.frequency import split_counts

    ids = np.array([[1, 2, 2, 0], [3, 3, 3, 3]], dtype=np.int32)  # row 0: length 3, then pad 0
    split = Windows(ids, np.array([3, 4], dtype=np.int32))
    path = tmp_path / "tokens.zarr"
    write_tokens(path, {"train": split, "eval": split}, {"vocab_size": 6})
    np.testing.assert_array_equal(split_counts(path), [0, 1, 2, 4, 0, 0])
