"""Shared fixtures: a tiny corpus, tokenizer and 2-layer models of hidden size 32, built here."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 64,
}


@pytest.fixture(scope="session")
def docs() -> list[str]:
    from repgeom.corpus import python_docs

    return python_docs()[:400]


@pytest.fixture(scope="session")
def tokenizer(docs):
    from repgeom.tokenization import train_bpe

    return train_bpe(docs, 400)


@pytest.fixture(scope="session")
def windows(docs, tokenizer):
    from repgeom.tokens import encode, stream_windows

    return stream_windows(
        encode(docs, tokenizer), 32, tokenizer.eos_token_id, tokenizer.bos_token_id
    )


@pytest.fixture(scope="session", params=["gpt_neox", "bert"])
def tiny_model(request, tokenizer):
    from repgeom.models import build_model

    return build_model(request.param, TINY, tokenizer, seed=0).eval()
