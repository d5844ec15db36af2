"""Snakemake adapter: train a model from scratch, saving checkpoints and the training log."""

from pathlib import Path

from repgeom.activations.models import build_model
from repgeom.activations.training import TrainConfig, train
from repgeom.data.tokenization import load_tokenizer, special_ids
from repgeom.data.tokens import read_tokens, tokens_attrs
from repgeom.io import atomic_path, write_dataset
from repgeom.options import build
from repgeom.provenance import provenance
from repgeom.runtime import log_to, resolve_device, set_threads

log_to(snakemake.log[0])
set_threads(snakemake.threads)
p = snakemake.params
tok = load_tokenizer(snakemake.input.tokenizer)
device = resolve_device(p.training["device"])
cfg = build(TrainConfig, p.training, where=f"models.{p.name}.training", extra=True)
model = build_model(p.architecture, p.model_config, tok, cfg.seed)
out_dirs = {Path(d).name: d for d in snakemake.output.checkpoints}


def save(step, m):
    with atomic_path(out_dirs[f"step{step}"]) as tmp:
        m.save_pretrained(tmp)
        tok.save_pretrained(tmp)


ids = {"special": special_ids(tok), "mask": tok.mask_token_id}
log = train(
    model,
    read_tokens(snakemake.input.tokens, "train"),
    read_tokens(snakemake.input.tokens, "eval"),
    ids,
    cfg,
    save,
    device,
)
params = {"architecture": p.architecture, "config": p.model_config, "training": p.training}
log.attrs = provenance(
    params,
    model=p.name,
    device=str(device),
    corpus_sha256=tokens_attrs(snakemake.input.tokens)["corpus_sha256"],
)
write_dataset(log, snakemake.output.log_nc)
