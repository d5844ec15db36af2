"""One unembedding: a soft-capping family's logits, eval loss, logit lens and rank-restricted
heads all equal the model's own; models without a cap are untouched; no core module looks up a
head, a final norm or a soft-cap of its own."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from repgeom.activations.architectures import (
    ARCHITECTURES,
    Unembedding,
    final_norm,
    soft_cap,
    transformer_layers,
)
from repgeom.activations.extraction import extract
from repgeom.activations.lens import LensSample, LogitLens
from repgeom.activations.loss import predicting_nll
from repgeom.activations.models import build_model
from repgeom.bottleneck.heads import (
    Head,
    HeadTraining,
    build_heads,
    evaluate_heads,
    rank_restricted_heads,
)
from repgeom.data.tokens import Windows
from tests.conftest import TINY
from tests.test_lens import ragged

ROOT = Path(__file__).resolve().parents[1]
CAP = 0.1  # small against the tiny model's logits (|z| up to ~0.3), so the cap bites


@pytest.fixture(scope="module")
def gemma(tokenizer):
    """A tiny Gemma 2 causal LM with final logit soft-capping."""
    from transformers import Gemma2Config, Gemma2ForCausalLM

    cfg = Gemma2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=64,
        final_logit_softcapping=CAP,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    return Gemma2ForCausalLM(cfg).eval()


def own_loss(model, w: Windows) -> tuple[float, int]:
    """The model's own mean next-token cross-entropy over windows (its forward with labels)."""
    nll, count = 0.0, 0
    with torch.no_grad():
        for row, n in zip(w.ids, w.lengths, strict=True):
            if n < 2:
                continue
            ids = torch.from_numpy(row[:n].astype(np.int64))[None]
            nll += model(input_ids=ids, labels=ids).loss.double().item() * (n - 1)
            count += n - 1
    return nll / count, count


def features(model, w: Windows) -> tuple[torch.Tensor, torch.Tensor]:
    """Final representations (the unembedding's input) and next-token targets, float32."""
    xs, ys = [], []
    with torch.no_grad():
        for row, n in zip(w.ids, w.lengths, strict=True):
            ids = torch.from_numpy(row[:n].astype(np.int64))[None]
            h = model.base_model(input_ids=ids).last_hidden_state[0]
            xs.append(h[:-1].float())
            ys.append(ids[0, 1:])
    return torch.cat(xs), torch.cat(ys)


def test_soft_cap_is_transformers_formula():
    z = torch.randn(7, 11, dtype=torch.float64) * 5
    expected = torch.tanh(z / 2.5) * 2.5  # Gemma2ForCausalLM: z / c, tanh, * c
    assert torch.equal(soft_cap(z, 2.5), expected)
    assert soft_cap(z, None) is z


def test_logits_equal_the_models_own_in_float64(gemma, windows):
    model = copy.deepcopy(gemma).double()
    unembedding = Unembedding.of(model)
    assert unembedding.softcap == CAP
    assert unembedding.weight is model.lm_head.weight and unembedding.bias is None
    ids = torch.from_numpy(windows.ids[:3].astype(np.int64))
    with torch.no_grad():
        own = model(input_ids=ids).logits
        hidden = model.base_model(input_ids=ids).last_hidden_state
        ours = unembedding.logits(hidden)
        raw = unembedding.head(hidden)
    assert ours.dtype == torch.float64
    torch.testing.assert_close(ours, own, rtol=1e-13, atol=1e-15)
    assert torch.equal(unembedding(hidden), ours)
    assert (raw - own).abs().max() > 1e-2  # the cap bites: the bare head is another model
    assert own.abs().max() < CAP


def test_eval_loss_and_lens_are_the_models_own(gemma, windows, tmp_path):
    w = ragged(windows)
    expected, count = own_loss(gemma, w)
    summary = extract(
        gemma, w, tmp_path / "s.zarr", 2, {}, eval_loss=True, logit_lens=LensSample(10**6, 0)
    )
    assert summary["eval_loss_tokens"] == count
    assert summary["eval_loss"] == pytest.approx(expected, rel=1e-6)
    ds = xr.open_zarr(tmp_path / "s.zarr")
    last = ds.logit_lens_loss.sel(layer=int(ds.layer[-1]))
    np.testing.assert_allclose(last.values, expected, rtol=1e-6)
    # the lens decoding the last layer itself (no eval-loss pass to reuse)
    lens = LogitLens(gemma, gemma.config.num_hidden_layers + 1)
    valid_np = np.arange(w.ids.shape[1])[None, :] < w.lengths[:, None]
    ids = torch.from_numpy(w.ids.astype(np.int64))
    valid = torch.from_numpy(valid_np)
    with torch.no_grad():
        out = gemma.base_model(
            input_ids=ids, attention_mask=valid.long(), output_hidden_states=True
        )
        lens.update(out.hidden_states, ids, valid[:, :-1] & valid[:, 1:])
        decoded = lens.results()["loss"]
        nll, _ = predicting_nll(
            Unembedding.of(gemma), out.last_hidden_state, ids, valid.long(), gemma.config.vocab_size
        )
        loss, n = float(nll.double().sum()), len(nll)
    np.testing.assert_allclose(decoded[-1], expected, rtol=1e-6)
    assert n == count and loss / n == pytest.approx(expected, rel=1e-6)


def cfg(init: str = "svd", budget: int = 64, ranks: tuple[int, ...] = (1, 4)) -> HeadTraining:
    return HeadTraining(
        token_budget=budget,
        batch_size=32,
        lr=1e-3,
        weight_decay=0.0,
        schedule="constant",
        warmup_fraction=0.0,
        shuffle_buffer=0,
        init=init,
        bias=False,
        seed=0,
        betas=(0.9, 0.999),
        eps=1e-8,
        ranks=ranks,
    )


def test_heads_start_from_the_models_unembedding(gemma, windows):
    w = ragged(windows)
    expected, count = own_loss(gemma, w)
    x, y = features(gemma, w)
    assert len(y) == count
    unembedding = Unembedding.of(gemma, "gemma final")
    w0 = unembedding.weight.detach().double().numpy()
    v, d = w0.shape
    _, full = build_heads(v, d, [1, 4], cfg(), w0, None, unembedding.softcap)
    _, uncapped = build_heads(v, d, [1, 4], cfg(), w0, None, None)
    dev = torch.device("cpu")
    for m in (full, uncapped):
        m.eval()
    batches = [(x[s : s + 16].numpy(), y[s : s + 16].numpy()) for s in range(0, len(y), 16)]
    (capped_loss, plain_loss), n = evaluate_heads([full, uncapped], batches, d, v, dev)
    assert n == count
    assert capped_loss == pytest.approx(expected, rel=1e-6)
    assert abs(plain_loss - expected) > 1e-3  # without the cap the head is another model
    ds = rank_restricted_heads(
        lambda: iter(batches), batches, v, d, cfg(), w0, None, "cpu", {}, CAP
    )
    assert float(ds.model_head_loss) == pytest.approx(expected, rel=1e-6)
    assert ds.attrs["head_logit_softcapping"] == CAP
    assert ds.attrs["head_logits"].startswith("c * tanh((W h) / c)")


def test_models_without_a_cap_are_untouched(tokenizer, windows):
    model = build_model("gpt_neox", TINY, tokenizer, seed=0).eval()
    unembedding = Unembedding.of(model)
    assert unembedding.softcap is None and unembedding.describe() == "W h"
    head = model.get_output_embeddings()
    ids = torch.from_numpy(windows.ids[:2].astype(np.int64))
    with torch.no_grad():
        h = model.base_model(input_ids=ids).last_hidden_state
        assert torch.equal(unembedding.logits(h), head(h))
        assert torch.equal(unembedding.logits(h), model(input_ids=ids).logits)
        plain = Head([head.weight.detach().clone()], None)
        assert torch.equal(plain(h[0]), h[0] @ head.weight.T)
    ds = rank_restricted_heads(
        lambda: iter([(h[0, :-1].numpy(), ids[0, 1:].numpy())]),
        [(h[1, :-1].numpy(), ids[1, 1:].numpy())],
        *head.weight.shape,
        cfg("random", 31, (1,)),
    )
    assert ds.attrs["head_logit_softcapping"] == "none" and ds.attrs["head_logits"] == "W h"
    encoder = build_model("bert", TINY, tokenizer, seed=0)
    with pytest.raises(ValueError, match="model 'enc s' loads as BertForMaskedLM .*no causal"):
        Unembedding.of(encoder, "enc s")


@pytest.mark.parametrize("family", sorted(ARCHITECTURES))
def test_layers_and_final_norm_of_every_family(family, tokenizer):
    extra = {"qwen2": {"num_key_value_heads": 2}, "roberta": {"max_position_embeddings": 80}}
    model = build_model(family, {**TINY, **extra.get(family, {})}, tokenizer, seed=0)
    assert len(transformer_layers(model)) == TINY["num_hidden_layers"]
    post_ln = ARCHITECTURES[family][2] == "masked"  # BERT, RoBERTa: no final norm
    assert (final_norm(model) is None) == post_ln
    if post_ln:
        with pytest.raises(ValueError, match="no final norm .* leave it out"):
            final_norm(model, needed="leave it out")


def test_gemma_layers_and_norm(gemma):
    assert transformer_layers(gemma) is gemma.model.layers
    assert final_norm(gemma) is gemma.model.norm


# the modules that decode with the model's head: none looks up a head, a norm or a cap itself
USERS = [
    "src/repgeom/activations/loss.py",
    "src/repgeom/activations/lens.py",
    "src/repgeom/activations/extraction.py",
    "src/repgeom/activations/models.py",
    "src/repgeom/bottleneck/heads.py",
    "src/repgeom/bottleneck/spectrum.py",
    "src/repgeom/bottleneck/features.py",
    "scripts/bottleneck_heads.py",
    "scripts/bottleneck_lm_head.py",
]
LOOKUPS = (
    "final_logit_softcapping",
    "FINAL_NORM_NAMES",
    "get_output_embeddings",
    "torch.tanh",
    "ARCHITECTURES = ",
)


@pytest.mark.parametrize("path", USERS)
def test_no_module_knows_architectures_but_one(path):
    source = (ROOT / path).read_text(encoding="utf-8")
    found = [s for s in LOOKUPS if s in source]
    assert not found, f"{path} looks up {found}: use repgeom.activations.architectures"
    own = (ROOT / "src/repgeom/activations/architectures.py").read_text(encoding="utf-8")
    assert all(s in own for s in LOOKUPS[:-2])


def test_architectures_do_not_import_torch():
    """Planning reads ARCHITECTURES through checkpoint.py without paying the torch import."""
    code = (
        "import sys, repgeom.activations.checkpoint, repgeom.activations.architectures as a; "
        "assert a.ARCHITECTURES and 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
