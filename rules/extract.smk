from repgeom.workflow.footprint import extraction_mem_mb


rule extract:
    """Hidden states of every layer for one checkpoint and corpus, with the eval loss."""
    input:
        tokens=lambda w: model_tokens(w.model, w.corpus),
        checkpoint=checkpoint_input,
    output:
        activation_output(f"{RESULTS}/activations/{{model}}/{{step}}/{{corpus}}.zarr"),
    log:
        f"{LOGS}/extract/{{model}}/{{step}}/{{corpus}}.log",
    benchmark:
        f"{BENCH}/extract/{{model}}/{{step}}/{{corpus}}.tsv"
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=lambda w: extraction_mem_mb(
            MODELS[w.model],
            w.step,
            config["extraction"],
            TOKENIZERS[MODELS[w.model]["tokenizer"]]["window"],
            EVAL_LOSS[w.model],
            CORPORA[w.corpus]["windows"] == "document",
        ),
        gpu=1 if config["extraction"]["device"] != "cpu" else 0,
    params:
        code=code("extract.py"),
        extraction={
            k: v
            for k, v in config["extraction"].items()
            if k not in ("corpora", "eval_loss", "logit_lens")
        },
        eval_loss=lambda w: EVAL_LOSS[w.model],
        logit_lens=lambda w: w.model in LENS_MODELS and w.corpus in EXTRACT_CORPORA,
        source=lambda w: model_source(w.model, w.step),
        model=lambda w: w.model,
        step=lambda w: w.step,
        corpus=lambda w: w.corpus,
    script:
        "../scripts/extract.py"
