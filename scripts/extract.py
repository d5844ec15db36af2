"""Snakemake adapter: hidden states of one checkpoint on one corpus, written to Zarr."""

import json
from pathlib import Path

from repgeom.activations.extraction import extract
from repgeom.activations.lens import LensSample
from repgeom.activations.models import Checkpoint, check_dtype
from repgeom.data.tokens import read_tokens, tokens_attrs
from repgeom.provenance import provenance
from repgeom.runtime import log_to, resolve_device, set_threads

log_to(snakemake.log[0])
set_threads(snakemake.threads)
p = snakemake.params
cfg = p.extraction
device = resolve_device(cfg["device"])
check_dtype(cfg["dtype"], device)
model = Checkpoint.from_source(p.source).load(cfg["dtype"], device)
corpus_cfg = json.loads(tokens_attrs(snakemake.input.tokens)["config"])["corpus"]
windowing = corpus_cfg.get("windows", "stream")
if windowing == "document":
    # one row per sentence: whole sentences, the same count for every aligned corpus
    windows = read_tokens(snakemake.input.tokens, cfg["split"], None, cfg["max_sentences"])
else:
    windows = read_tokens(snakemake.input.tokens, cfg["split"], cfg["max_tokens"])
attrs = provenance(
    {"extraction": cfg, "eval_loss": p.eval_loss, "logit_lens": p.logit_lens, "source": p.source},
    model=p.model,
    step=p.step,
    corpus=p.corpus,
    model_source=json.dumps(p.source),
    device=str(device),
    corpus_sha256=tokens_attrs(snakemake.input.tokens)["corpus_sha256"],
    checkpoint_fingerprint=json.loads(Path(snakemake.input.fingerprint).read_text())["fingerprint"],
)
lens = None if p.logit_lens is None else LensSample(**p.logit_lens)
summary = extract(model, windows, snakemake.output[0], cfg["batch_size"], attrs, p.eval_loss, lens)
print(summary)
