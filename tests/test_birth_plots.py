"""Figures of the "Birth of a Transformer" study on tiny datasets."""

from __future__ import annotations

import dataclasses

import matplotlib.pyplot as plt
import pytest

from repgeom.birth.config import BirthConfig
from repgeom.birth.data import make_language
from repgeom.birth.plan import VARIANT
from repgeom.birth.plots import attention_maps, memory_probe_curves, training_curves
from repgeom.birth.train import train_on_language
from repgeom.workflow.config import options

DOCS = [
    "the quick brown fox jumps over the lazy dog while the cat sleeps on a warm mat",
    "a small bird sings in the tall tree and the wind moves the green leaves",
]
TINY = {"n_vocab": 12, "seq_len": 16, "d_model": 8, "n_iterations": 4, "eval_every": 2}


def variant(name: str, **settings) -> BirthConfig:
    return dataclasses.replace(options(BirthConfig, VARIANT, {**TINY, **settings}), name=name)


@pytest.fixture(scope="module")
def runs():
    lang = make_language(DOCS, 12)
    return {
        "simplified": train_on_language(lang, variant(name="simplified")),
        "one_layer": train_on_language(lang, variant(name="one_layer", arch="full", n_layers=1)),
    }


def test_training_curves(runs):
    fig = training_curves({k: m for k, (m, _) in runs.items()})
    assert isinstance(fig, plt.Figure) and len(fig.axes) == 3
    assert len(fig.axes[2].lines) == 2 * 2 + 1  # in-distribution + OOD per variant, legend stub
    plt.close(fig)


def test_memory_probe_curves_skip_variants_without_probes(runs):
    fig = memory_probe_curves({k: m for k, (m, _) in runs.items()})
    assert len(fig.axes) == 1 and fig.axes[0].get_title() == "simplified"
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels == ["$W_O^2$", "$W_K^2$", "$W_K^1$"]
    plt.close(fig)
    with pytest.raises(ValueError, match="no variant"):
        memory_probe_curves({"one_layer": runs["one_layer"][0]})


def test_attention_maps(runs):
    fig = attention_maps({k: a for k, (_, a) in runs.items()}, max_positions=10)
    assert len(fig.axes) == 4  # 2 variants × 2 layer columns (one blank)
    assert len(fig.axes[0].images) == 1
    assert fig.axes[0].images[0].get_array().shape == (10, 10)
    plt.close(fig)


def test_plot_errors(runs):
    with pytest.raises(ValueError, match="empty"):
        training_curves({})
    with pytest.raises(ValueError, match="lacks"):
        attention_maps({"x": runs["simplified"][0]})
