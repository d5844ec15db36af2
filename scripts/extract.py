"""Snakemake adapter: hidden states of one checkpoint on one corpus, written to Zarr."""

import json
from pathlib import Path

from repgeom.activations.extraction import extract
from repgeom.activations.lens import LensSample
from repgeom.activations.models import Checkpoint, check_dtype
from repgeom.activations.options import ExtractionOptions
from repgeom.data.tokens import tokens_attrs
from repgeom.options import build
from repgeom.provenance import provenance
from repgeom.runtime import log_to, resolve_device, set_threads

log_to(snakemake.log[0])
set_threads(snakemake.threads)
p = snakemake.params
options = build(ExtractionOptions, p.extraction, where="extraction")
lens = None if p.logit_lens is None else build(LensSample, p.logit_lens, where="logit_lens")
device = resolve_device(options.device)
check_dtype(options.dtype, device)
model = Checkpoint.from_source(p.source).load(options.dtype, device)
windows = options.windows(snakemake.input.tokens)
attrs = provenance(
    {
        "extraction": p.extraction,
        "eval_loss": p.eval_loss,
        "logit_lens": p.logit_lens,
        "pre_final_norm": p.pre_final_norm,
        "source": p.source,
    },
    model=p.model,
    step=p.step,
    corpus=p.corpus,
    model_source=json.dumps(p.source),
    device=str(device),
    corpus_sha256=tokens_attrs(snakemake.input.tokens)["corpus_sha256"],
    checkpoint_fingerprint=json.loads(Path(snakemake.input.fingerprint).read_text())["fingerprint"],
)
# pre_final_norm: the final norm's input too (metrics.geometry.conventions.final_norm: before)
passes = {"eval_loss": p.eval_loss, "logit_lens": lens, "pre_final_norm": p.pre_final_norm}
summary = extract(model, windows, snakemake.output[0], options.batch_size, attrs, **passes)
print(summary)
