"""The similarity job's dataset: both CKA forms between layers and to the final checkpoint, on
the seeded rows, against float64 n × n kernel computations; options from the schema."""

from __future__ import annotations

import numpy as np
import pytest

from repgeom.activations.source import ArraySource
from repgeom.metrics.similarity import SimilarityOptions, similarity_dataset, similarity_rows
from repgeom.sampling import seeded_subsample
from repgeom.workflow.config import ConfigError, options
from tests.test_similarity import kernel_cka, kernel_cka_unbiased


def stores(n: int = 150, layers: int = 3, d: int = 12, seed: int = 0):
    """A store and its 'final checkpoint': the same tokens, related hidden states."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, d)) * np.linspace(0.5, 3, d) + 1.0
    hidden = np.stack([base @ rng.normal(size=(d, d)) + 0.5 * i for i in range(layers)])
    final = hidden + rng.normal(size=hidden.shape)
    ids = rng.integers(0, 500, size=n)
    seq, pos = np.arange(n) // 30, np.arange(n) % 30

    def make(h: np.ndarray) -> ArraySource:
        return ArraySource(h.astype(np.float32), position=pos, sequence=seq, token_id=ids)

    return make(hidden), make(final), hidden.astype(np.float32), final.astype(np.float32)


def opts(**section) -> SimilarityOptions:
    return options(SimilarityOptions, "metrics.similarity", section)


def test_options_from_the_schema():
    assert opts() == SimilarityOptions(sample=4096, seed=0, layers=None)
    assert opts(layers=[0, -1]).layers == (0, -1)
    with pytest.raises(ConfigError, match="metrics.similarity"):
        opts(samples=10)
    with pytest.raises(ConfigError, match="metrics.similarity.sample"):
        opts(sample=3)
    with pytest.raises(ValueError, match="at least 4"):
        SimilarityOptions(sample=2, seed=0, layers=None)


def test_dataset_on_the_seeded_rows_against_kernels():
    source, final, hidden, final_hidden = stores()
    o = opts(sample=40, seed=3)
    rows = seeded_subsample(150, 40, 3)
    np.testing.assert_array_equal(similarity_rows(source, o), rows)
    ds = similarity_dataset(source, final, o)
    assert ds["cka_layers"].dims == ("layer", "layer_other")
    assert ds["cka_to_final"].dims == ("layer",)
    assert int(ds["n_tokens"]) == 40 and ds.attrs == {"sample": 40, "seed": 3}
    for name in ("cka_layers", "cka_layers_debiased", "cka_to_final", "cka_to_final_debiased"):
        assert ds[name].attrs["long_name"] and ds[name].attrs["units"] == "1"
    x = [h[rows] for h in hidden]
    y = [h[rows] for h in final_hidden]
    assert float(ds.cka_layers.sel(layer=0, layer_other=2)) == pytest.approx(
        kernel_cka(x[0], x[2]), rel=1e-9
    )
    assert float(ds.cka_layers_debiased.sel(layer=2, layer_other=1)) == pytest.approx(
        kernel_cka_unbiased(x[2], x[1]), rel=1e-9
    )
    for layer in range(3):
        assert float(ds.cka_to_final.sel(layer=layer)) == pytest.approx(
            kernel_cka(x[layer], y[layer]), rel=1e-9
        )
        assert float(ds.cka_to_final_debiased.sel(layer=layer)) == pytest.approx(
            kernel_cka_unbiased(x[layer], y[layer]), rel=1e-9
        )
    # another seed draws other rows, so other values
    other = similarity_dataset(source, final, opts(sample=40, seed=4))
    assert not np.allclose(other.cka_to_final, ds.cka_to_final)


def test_every_token_when_the_store_holds_no_more_than_the_sample():
    source, final, hidden, final_hidden = stores(n=60)
    ds = similarity_dataset(source, final, opts(sample=4096))
    assert int(ds["n_tokens"]) == 60
    assert float(ds.cka_to_final.sel(layer=1)) == pytest.approx(
        kernel_cka(hidden[1], final_hidden[1]), rel=1e-9
    )
    # the final checkpoint against itself: 1 at every layer, both forms; the diagonal is 1
    own = similarity_dataset(final, final, opts(sample=4096))
    np.testing.assert_allclose(own.cka_to_final, 1.0, rtol=1e-12)
    np.testing.assert_allclose(own.cka_to_final_debiased, 1.0, rtol=1e-12)
    np.testing.assert_array_equal(np.diag(own.cka_layers), 1.0)


def test_layers_option():
    source, final, *_ = stores(layers=4)
    ds = similarity_dataset(source, final, opts(sample=50, layers=[-1, 0]))
    assert list(ds.layer.values) == [0, 3] == list(ds.layer_other.values)
    with pytest.raises(ValueError, match="model m, step s: layer 7 does not exist"):
        similarity_dataset(source, final, opts(layers=[7]), where="model m, step s")


def test_stores_of_other_tokens_are_refused_naming_the_job():
    source, final, hidden, final_hidden = stores()
    ids = np.asarray(final.token_id).copy()
    ids[149] += 1  # outside any subsample too: the stores differ, so they are refused
    other = ArraySource(final_hidden, final.position, final.sequence, ids)
    where = "similarity of model 'decoder', step 'step4', corpus 'docs'"
    expected = rf"^{where}: .*token_id differs at 1 of 150"
    with pytest.raises(ValueError, match=expected):
        similarity_dataset(source, other, opts(sample=40), where=where)
    cut = slice(0, 100)
    shorter = ArraySource(
        final_hidden[:, cut], final.position[cut], final.sequence[cut], final.token_id[cut]
    )
    with pytest.raises(ValueError, match="step 'step4'.*150 against 100 rows"):
        similarity_dataset(source, shorter, opts(sample=40), where=where)
    constant = ArraySource(np.ones_like(hidden), final.position, final.sequence, final.token_id)
    with pytest.raises(ValueError, match="corpus 'docs': layer 0 is the same vector"):
        similarity_dataset(constant, final, opts(sample=40), where=where)
