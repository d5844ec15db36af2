"""Shared fixtures: a tiny corpus, tokenizer and 2-layer models of hidden size 32, built here."""

from __future__ import annotations

import os
import shutil

import pytest

SLURM_OPT_IN = "REPGEOM_SLURM_TEST"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 64,
}


def stdlib_docstrings(
    modules: tuple[str, ...] = ("argparse", "collections", "typing"),
) -> list[str]:
    """English documents for the bigram-trigger tests: the docstrings of a few stdlib modules
    (``repgeom.data.corpus.docstrings``)."""
    import importlib.util
    from pathlib import Path

    from repgeom.data.corpus import docstrings

    docs: list[str] = []
    for name in modules:
        origin = importlib.util.find_spec(name).origin
        docs.extend(docstrings(Path(origin).read_text(encoding="utf-8")))
    assert docs, f"no docstrings found in {modules}"
    return docs


def pytest_collection_modifyitems(config, items):
    """Tests marked slurm run only when asked for: REPGEOM_SLURM_TEST=1 or -m slurm."""
    if os.environ.get(SLURM_OPT_IN) == "1" or "slurm" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(
        reason=f"SLURM end-to-end run (14-22 min): opt in with {SLURM_OPT_IN}=1 or -m slurm"
    )
    for item in items:
        if item.get_closest_marker("slurm"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def docs() -> list[str]:
    from repgeom.data.corpus import python_docs

    return python_docs()[:400]


@pytest.fixture(scope="session")
def tokenizer(docs):
    from repgeom.data.tokenization import train_bpe

    return train_bpe(docs, 400)


@pytest.fixture(scope="session")
def windows(docs, tokenizer):
    from repgeom.data.tokens import encode, stream_windows

    return stream_windows(
        encode(docs, tokenizer), 32, tokenizer.eos_token_id, tokenizer.bos_token_id
    )


@pytest.fixture(scope="session", params=["gpt_neox", "bert"])
def tiny_model(request, tokenizer):
    from repgeom.activations.models import build_model

    return build_model(request.param, TINY, tokenizer, seed=0).eval()


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory):
    """A finished run of config/test.yaml (shared by the end-to-end tests; do not modify it)."""
    from tests.workflow import ROOT, snakemake

    work = tmp_path_factory.mktemp("e2e")
    shutil.copy(ROOT / "config" / "test.yaml", work / "config.yaml")
    res = snakemake(work, work / "config.yaml", "--cores", "2")
    assert res.returncode == 0, res.stderr[-5000:]
    return work
