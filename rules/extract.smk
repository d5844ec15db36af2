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
        mem_mb=lambda w: extract_mem_mb(w.model, w.step, w.corpus),
        gpu=1 if config["extraction"]["device"] != "cpu" else 0,
    params:
        code=code("extract.py"),
        extraction={
            k: v
            for k, v in config["extraction"].items()
            if k not in ("corpora", "eval_loss")
        },
        eval_loss=lambda w: EVAL_LOSS[w.model],
        source=lambda w: model_source(w.model, w.step),
        model=lambda w: w.model,
        step=lambda w: w.step,
        corpus=lambda w: w.corpus,
    script:
        "../scripts/extract.py"


rule release_hub_revision:
    """Remove a hub revision from the HF cache once every job that loads it is done, when this
    workflow downloaded it (disk.release_hub_revisions); records what was freed."""
    input:
        lambda w: HUB_RELEASES[(w.model, w.step)],
    output:
        hub_release_path("{model}", "{step}"),
    log:
        f"{LOGS}/hub/{{model}}/{{step}}.log",
    benchmark:
        f"{BENCH}/hub/{{model}}/{{step}}.tsv"
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        code=code("release_hub_revision.py"),
        source=lambda w: model_source(w.model, w.step),
        downloaded=lambda w: HUB_DOWNLOADED[(w.model, w.step)],
        model=lambda w: w.model,
        step=lambda w: w.step,
    script:
        "../scripts/release_hub_revision.py"
