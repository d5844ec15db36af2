from repgeom.workflow.footprint import extraction_mem_mb

# A store pays for a decoding pass only where a study reads it (RUN.passes): the eval loss for
# the softmax-bottleneck study (or every model with extraction.eval_loss: true), the logit lens
# for the logit-lens study.


rule extract:
    """Hidden states of every layer for one checkpoint and corpus, with the eval loss and the
    logit lens where a study reads them."""
    input:
        tokens=lambda w: model_tokens(w.model, w.corpus),
        checkpoint=checkpoint_input,
        fingerprint=PATHS.fingerprint("{model}", "{step}"),
        integrity=integrity_gate,
    output:
        activation_output(PATHS.activations("{model}", "{step}", "{corpus}")),
    log:
        PATHS.logs("extract/{model}/{step}/{corpus}.log"),
    benchmark:
        PATHS.benchmarks("extract/{model}/{step}/{corpus}.tsv")
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=lambda w: extraction_mem_mb(
            MODELS[w.model],
            w.step,
            config["extraction"],
            TOKENIZERS[MODELS[w.model]["tokenizer"]]["window"],
            store_eval_loss(w) or store_lens(w) is not None,
            CORPORA[w.corpus]["windows"] == "document",
        ),
        gpu=1 if config["extraction"]["device"] != "cpu" else 0,
    params:
        code=code("extract.py"),
        extraction={
            k: v
            for k, v in config["extraction"].items()
            if k not in ("corpora", "eval_loss")
        },
        eval_loss=store_eval_loss,
        logit_lens=store_lens,
        # the final norm's input, stored beside the layers for the geometry job's
        # metrics.geometry.conventions.final_norm: before (changing it re-extracts)
        pre_final_norm=RUN.pre_final_norm,
        source=lambda w: model_source(w.model, w.step),
        model=lambda w: w.model,
        step=lambda w: w.step,
        corpus=lambda w: w.corpus,
    script:
        "../scripts/extract.py"
