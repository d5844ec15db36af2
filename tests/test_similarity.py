"""Linear CKA (standard and debiased) against float64 n × n kernel computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group

import repgeom.metrics.similarity as sim
from repgeom.activations.source import ArraySource
from repgeom.metrics.similarity import (
    choose_route,
    cka_layers_dataset,
    cka_matrices,
    cka_matrix,
    cka_to_final_dataset,
    cka_to_reference,
    linear_cka,
)


def kernel_cka(x: np.ndarray, y: np.ndarray) -> float:
    """CKA from the n × n kernels: HSIC = tr(KHLH)/(n−1)² with H the centring matrix."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    n = len(x)
    h = np.eye(n) - np.ones((n, n)) / n
    k, lk = x @ x.T, y @ y.T

    def hsic(a: np.ndarray, b: np.ndarray) -> float:
        return np.trace(a @ h @ b @ h) / (n - 1) ** 2

    return hsic(k, lk) / np.sqrt(hsic(k, k) * hsic(lk, lk))


def kernel_cka_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Debiased CKA from the uncentred kernels with zeroed diagonals (Song et al. 2012)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    n = len(x)
    one = np.ones(n)

    def hsic_u(a: np.ndarray, b: np.ndarray) -> float:
        a, b = a - np.diag(np.diag(a)), b - np.diag(np.diag(b))
        return (
            np.trace(a @ b)
            + (one @ a @ one) * (one @ b @ one) / ((n - 1) * (n - 2))
            - 2 / (n - 2) * (one @ a @ b @ one)
        ) / (n * (n - 3))

    k, lk = x @ x.T, y @ y.T
    return hsic_u(k, lk) / np.sqrt(hsic_u(k, k) * hsic_u(lk, lk))


def related(rng: np.random.Generator, n: int, d1: int, d2: int) -> tuple[np.ndarray, np.ndarray]:
    """Two representations sharing a linear part, off the origin, of different widths."""
    x = rng.normal(size=(n, d1)) * np.linspace(0.5, 3, d1) + 2.0
    y = x @ rng.normal(size=(d1, d2)) + 2.0 * rng.normal(size=(n, d2)) - 1.5
    return x, y


@pytest.mark.parametrize("debiased", [False, True])
def test_against_kernel_computation(debiased):
    rng = np.random.default_rng(0)
    ref = kernel_cka_unbiased if debiased else kernel_cka
    for n, d1, d2 in [(150, 20, 35), (40, 60, 7)]:
        x, y = related(rng, n, d1, d2)
        expected = ref(x, y)
        assert 0.05 < abs(expected) < 0.99
        assert linear_cka(x, y, debiased) == pytest.approx(expected, rel=1e-9, abs=1e-12)
        assert linear_cka(y, x, debiased) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    # float32 input (as the store gives) is summed in float64
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    assert linear_cka(x32, y32, debiased) == pytest.approx(ref(x32, y32), rel=1e-9)


def test_standard_and_debiased_differ():
    x, y = related(np.random.default_rng(1), 60, 30, 30)
    assert abs(linear_cka(x, y) - linear_cka(x, y, debiased=True)) > 1e-3


@pytest.mark.parametrize("debiased", [False, True])
def test_invariances(debiased):
    rng = np.random.default_rng(2)
    x, y = related(rng, 120, 24, 16)
    base = linear_cka(x, y, debiased)
    q = ortho_group.rvs(24, random_state=3)
    shift = rng.normal(size=24) * 50
    assert linear_cka(x @ q, y, debiased) == pytest.approx(base, rel=1e-10)
    assert linear_cka(x * 37.5, y, debiased) == pytest.approx(base, rel=1e-10)
    assert linear_cka(x, y * 1e-3, debiased) == pytest.approx(base, rel=1e-10)
    assert linear_cka(x + shift, y, debiased) == pytest.approx(base, rel=1e-10)
    assert linear_cka(x, y - 4.0, debiased) == pytest.approx(base, rel=1e-10)
    # not invariant to an anisotropic scaling, so the checks above can fail
    assert linear_cka(x * np.linspace(1, 20, 24), y, debiased) != pytest.approx(base, rel=1e-3)


def test_self_similarity_is_one():
    x = np.random.default_rng(4).normal(size=(50, 80)) + 1.0
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-14)
    assert linear_cka(x, x, debiased=True) == pytest.approx(1.0, abs=1e-14)


def test_debiased_near_zero_for_independent_data_at_small_n():
    rng = np.random.default_rng(5)
    standard, debiased = [], []
    for _ in range(5):
        x, y = rng.normal(size=(64, 256)), rng.normal(size=(64, 256))
        standard.append(linear_cka(x, y))
        debiased.append(linear_cka(x, y, debiased=True))
        assert debiased[-1] == pytest.approx(kernel_cka_unbiased(x, y), abs=1e-10)
    assert min(standard) > 0.7  # the standard form is far from 0 here
    assert max(abs(v) for v in debiased) < 0.05


def test_refusals():
    rng = np.random.default_rng(6)
    with pytest.raises(ValueError, match="x has 10 rows and y has 12"):
        linear_cka(rng.normal(size=(10, 3)), rng.normal(size=(12, 3)))
    with pytest.raises(ValueError, match="at least 4 tokens"):
        linear_cka(rng.normal(size=(3, 5)), rng.normal(size=(3, 5)), debiased=True)
    assert np.isfinite(linear_cka(rng.normal(size=(3, 5)), rng.normal(size=(3, 5))))
    with pytest.raises(ValueError, match="same vector for every token"):
        linear_cka(np.ones((10, 3)), rng.normal(size=(10, 3)))
    with pytest.raises(FloatingPointError):
        linear_cka(np.full((10, 3), np.nan), rng.normal(size=(10, 3)))
    with pytest.raises(ValueError, match="layer 0 has 20 rows and layer 2 has 19"):
        cka_matrix([rng.normal(size=(20, 4)), rng.normal(size=(20, 4)), rng.normal(size=(19, 4))])
    with pytest.raises(ValueError, match="route"):
        cka_matrix([rng.normal(size=(20, 4))] * 2, route="kernel")


def layer_stack(seed: int, n: int, widths: list[int]) -> list[np.ndarray]:
    """Layers of a toy residual stream (each a noisy map of the one before), float32."""
    rng = np.random.default_rng(seed)
    out = [rng.normal(size=(n, widths[0])) + 1.0]
    for d in widths[1:]:
        prev = out[-1]
        out.append(prev @ rng.normal(size=(prev.shape[1], d)) / 3 + rng.normal(size=(n, d)))
    return [x.astype(np.float32) for x in out]


@pytest.mark.parametrize("debiased", [False, True])
def test_matrix_equals_pairwise_and_routes_agree(debiased, monkeypatch):
    layers = layer_stack(7, 90, [16, 40, 8, 100, 30])
    pairwise = np.array([[linear_cka(a, b, debiased) for b in layers] for a in layers])
    for route in ("auto", "feature", "gram"):
        m = cka_matrix(layers, debiased, route=route)
        np.testing.assert_allclose(m, pairwise, rtol=0, atol=1e-10)
        assert (m == m.T).all()
        assert (np.diag(m) == 1.0).all()
    # the gram route over uneven row blocks (7 rows each: 12 full blocks and one of 6)
    monkeypatch.setattr(sim, "GRAM_BLOCK_BYTES", 8 * 5 * 90 * 7)
    np.testing.assert_allclose(cka_matrix(layers, debiased, "gram"), pairwise, atol=1e-10)
    off = pairwise[~np.eye(5, dtype=bool)]
    assert off.min() < 0.9 and off.max() > 0.1  # not a trivial matrix


def test_matrices_give_both_forms():
    layers = layer_stack(8, 50, [12, 12, 12])
    standard, debiased = cka_matrices(layers, route="gram")
    np.testing.assert_allclose(standard, cka_matrix(layers, False, "feature"), atol=1e-12)
    np.testing.assert_allclose(debiased, cka_matrix(layers, True, "feature"), atol=1e-12)
    assert cka_matrices([x[:3] for x in layers])[1] is None


def test_route_choice():
    # 25 layers of 1024 at 4096 tokens: one Gram per layer beats 300 cross products
    assert choose_route(4096, [1024] * 25) == "gram"
    # a pair of wide layers over many tokens: the cross products win
    assert choose_route(4096, [1024, 1024]) == "feature"
    assert choose_route(100_000, [768] * 13) == "feature"
    # cheaper in flops but the blocks would be too thin: feature
    assert choose_route(4096, [1024] * 25, block_bytes=8 * 25 * 4096 * 10) == "feature"


def test_to_reference():
    rng = np.random.default_rng(9)
    layers = layer_stack(10, 70, [20, 20, 20])
    reference = [x + 0.5 * rng.normal(size=x.shape) for x in layers]
    for debiased in (False, True):
        expected = [
            kernel_cka_unbiased(a, b) if debiased else kernel_cka(a, b)
            for a, b in zip(layers, reference, strict=True)
        ]
        for route in ("feature", "gram"):
            got = cka_to_reference(layers, reference, debiased, route=route)
            np.testing.assert_allclose(got, expected, rtol=1e-9)
    with pytest.raises(ValueError, match="3 layers against 2 reference"):
        cka_to_reference(layers, reference[:2])


def test_layers_dataset():
    hidden = np.stack(layer_stack(11, 200, [24] * 4))
    source = ArraySource(hidden)
    rows = np.sort(np.random.default_rng(12).choice(200, size=60, replace=False))
    ds = cka_layers_dataset(source, rows)
    assert ds["cka_layers"].dims == ("layer", "layer_other")
    assert list(ds["layer"].values) == [0, 1, 2, 3] == list(ds["layer_other"].values)
    assert int(ds["n_tokens"]) == 60
    for name in ("cka_layers", "cka_layers_debiased"):
        assert ds[name].attrs["units"] == "1" and ds[name].attrs["long_name"]
    subset = [x[rows] for x in hidden]
    np.testing.assert_allclose(ds["cka_layers"].values, cka_matrix(subset), atol=1e-12)
    np.testing.assert_allclose(
        ds["cka_layers_debiased"].values, cka_matrix(subset, True), atol=1e-12
    )
    assert ds["cka_layers"].sel(layer=0, layer_other=3) == pytest.approx(
        kernel_cka(subset[0], subset[3]), rel=1e-9
    )
    assert not np.allclose(ds["cka_layers"].values, cka_matrix(list(hidden)), atol=1e-3)


def test_to_final_dataset_and_token_check():
    rng = np.random.default_rng(13)
    hidden = np.stack(layer_stack(14, 120, [16] * 3))
    final_hidden = (hidden + rng.normal(size=hidden.shape)).astype(np.float32)
    ids = rng.integers(0, 1000, size=120)
    seq, pos = np.repeat(np.arange(4), 30), np.tile(np.arange(30), 4)
    source = ArraySource(hidden, position=pos, sequence=seq, token_id=ids)
    final = ArraySource(final_hidden, position=pos, sequence=seq, token_id=ids)
    rows = np.arange(0, 120, 2)
    ds = cka_to_final_dataset(source, final, rows)
    assert ds["cka_to_final"].dims == ("layer",) and int(ds["n_tokens"]) == 60
    for name in ("cka_to_final", "cka_to_final_debiased"):
        assert ds[name].attrs["units"] == "1" and ds[name].attrs["long_name"]
    for layer in range(3):
        x, y = hidden[layer][rows], final_hidden[layer][rows]
        assert float(ds["cka_to_final"].sel(layer=layer)) == pytest.approx(
            kernel_cka(x, y), rel=1e-9
        )
        assert float(ds["cka_to_final_debiased"].sel(layer=layer)) == pytest.approx(
            kernel_cka_unbiased(x, y), rel=1e-9
        )

    # a token outside the selected rows may differ; one inside may not
    other_ids = ids.copy()
    other_ids[1] += 1
    cka_to_final_dataset(source, ArraySource(final_hidden, pos, seq, other_ids), rows)
    other_ids[2] += 1
    with pytest.raises(
        ValueError,
        match=r"store \(ArraySource\) and final-checkpoint store \(ArraySource\).*token_id differs at 1 of 60",
    ):
        cka_to_final_dataset(source, ArraySource(final_hidden, pos, seq, other_ids), rows)
    with pytest.raises(ValueError, match="sequence differs"):
        cka_to_final_dataset(source, ArraySource(final_hidden, pos, seq[::-1].copy(), ids), rows)
    with pytest.raises(ValueError, match="position differs"):
        cka_to_final_dataset(source, ArraySource(final_hidden, (pos + 1) % 30, seq, ids))
    with pytest.raises(ValueError, match="different tokens: 120 against 100 rows"):
        cka_to_final_dataset(
            source, ArraySource(final_hidden[:, :100], pos[:100], seq[:100], ids[:100])
        )


def test_stores_are_named_when_tokens_differ():
    class Named(ArraySource):
        def __init__(self, hidden: np.ndarray, path: str, token_id: np.ndarray) -> None:
            super().__init__(hidden, token_id=token_id)
            self.path = path

    hidden = np.stack(layer_stack(15, 20, [4, 4]))
    a = Named(hidden, "runs/step1000.zarr", np.arange(20))
    b = Named(hidden, "runs/step143000.zarr", np.arange(20)[::-1].copy())
    with pytest.raises(ValueError, match="step1000.zarr.*step143000.zarr"):
        cka_to_final_dataset(a, b)
