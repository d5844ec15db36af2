# Checkpoint integrity: every checkpoint's stored weights fingerprinted, duplicates stopped
# before extraction (integrity.duplicates: error), the weights' trajectory measured.


WEIGHTS_MODELS = [m for m in MODELS if not integrity_released(m)]
for _name in MODELS:
    if integrity_released(_name):
        warn(
            f"model {_name!r}: its revisions are downloaded and released one at a time "
            "(disk.release_hub_revisions), so their weights are fingerprinted and checked for "
            "duplicates but the distances between them (results/metrics/weights) are not "
            "measured"
        )


rule fingerprint:
    """sha256 of every tensor stored in one checkpoint's weight files, and of the whole."""
    input:
        checkpoint=checkpoint_input,
    output:
        PATHS.fingerprint("{model}", "{step}"),
    log:
        PATHS.logs("weights/{model}/{step}.log"),
    benchmark:
        PATHS.benchmarks("weights/{model}/{step}.tsv")
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        code=code("fingerprint.py"),
        source=lambda w: model_source(w.model, w.step),
    script:
        "../scripts/fingerprint.py"


rule integrity:
    """A model's duplicate checkpoints from their fingerprints: the run stops here unless
    integrity.duplicates is keep."""
    input:
        lambda w: [PATHS.fingerprint(w.model, s) for s in STEPS[w.model]],
    output:
        PATHS.integrity("{model}"),
    log:
        PATHS.logs("weights/{model}/integrity.log"),
    benchmark:
        PATHS.benchmarks("weights/{model}/integrity.tsv")
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        code=code("integrity.py"),
        checkpoints=lambda w: CHECKPOINT_PARAMS[w.model],
        duplicates=config["integrity"]["duplicates"],
        labels_key=lambda w: labels_key(w.model),
        model=lambda w: w.model,
    script:
        "../scripts/integrity.py"


rule weights:
    """Fingerprints, duplicates and the float64 distances between a model's checkpoints."""
    input:
        gate=PATHS.integrity("{model}"),
        fingerprints=lambda w: [PATHS.fingerprint(w.model, s) for s in STEPS[w.model]],
        checkpoints=lambda w: checkpoint_dirs(w.model),
    output:
        PATHS.metric("weights", "{model}"),
    log:
        PATHS.logs("metrics/weights/{model}.log"),
    benchmark:
        PATHS.benchmarks("metrics/weights/{model}.tsv")
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        code=code("weights.py"),
        checkpoints=lambda w: CHECKPOINT_PARAMS[w.model],
        sources=lambda w: [model_source(w.model, s) for s in STEPS[w.model]],
        model=lambda w: w.model,
    script:
        "../scripts/weights.py"


rule weights_figure:
    """Distances between a model's checkpoints over training, duplicates marked."""
    input:
        PATHS.metric("weights", "{model}"),
    output:
        png=report(
            PATHS.figure("weights", "{model}", "png"),
            caption="../report/weights/weights.rst",
            category="Checkpoint integrity",
            subcategory="{model}",
        ),
        pdf=PATHS.figure("weights", "{model}", "pdf"),
    log:
        PATHS.logs("figures/weights/{model}.log"),
    benchmark:
        PATHS.benchmarks("figures/weights/{model}.tsv")
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        code=code("weights_figure.py"),
        model=lambda w: w.model,
    script:
        "../scripts/weights_figure.py"
