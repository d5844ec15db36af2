rule geometry:
    """Anisotropy family, intrinsic dimension and linearity of one activation store, and
    where its anisotropy comes from: rogue dimensions and massive activations (dimensions),
    and the geometry of tokens bucketed by their count in the corpus's train split
    (frequency)."""
    input:
        store=PATHS.activations("{model}", "{step}", "{corpus}"),
        tokens=lambda w: model_tokens(w.model, w.corpus),
    output:
        anisotropy=PATHS.metric("anisotropy", "{model}", "{step}", "{corpus}"),
        intrinsic_dimension=PATHS.metric(
            "intrinsic_dimension", "{model}", "{step}", "{corpus}"
        ),
        linearity=PATHS.metric("linearity", "{model}", "{step}", "{corpus}"),
        dimensions=PATHS.metric("dimensions", "{model}", "{step}", "{corpus}"),
        frequency=PATHS.metric("frequency", "{model}", "{step}", "{corpus}"),
    log:
        PATHS.logs("metrics/geometry/{model}/{step}/{corpus}.log"),
    benchmark:
        PATHS.benchmarks("metrics/geometry/{model}/{step}/{corpus}.tsv")
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        code=code("geometry.py"),
        options=config["metrics"]["geometry"],
        dimensions=config["metrics"]["dimensions"],
        frequency=config["metrics"]["frequency"],
    script:
        "../scripts/geometry.py"


rule similarity:
    """Linear CKA (standard and debiased) between the layers of one activation store, and of
    each layer with the same layer of the model's last checkpoint on the same corpus."""
    input:
        store=PATHS.activations("{model}", "{step}", "{corpus}"),
        final=lambda w: PATHS.activations(w.model, LAST[w.model], w.corpus),
    output:
        PATHS.metric("similarity", "{model}", "{step}", "{corpus}"),
    log:
        PATHS.logs("metrics/similarity/{model}/{step}/{corpus}.log"),
    benchmark:
        PATHS.benchmarks("metrics/similarity/{model}/{step}/{corpus}.tsv")
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        code=code("similarity.py"),
        options=config["metrics"]["similarity"],
        model=lambda w: w.model,
        step=lambda w: w.step,
        corpus=lambda w: w.corpus,
        final_step=lambda w: LAST[w.model],
    script:
        "../scripts/similarity.py"


rule gather_metric:
    """One metric of one model gathered over steps and corpora."""
    input:
        datasets=lambda w: [
            PATHS.metric(w.metric, w.model, s, c)
            for s in STEPS[w.model]
            for c in EXTRACT_CORPORA
        ],
        integrity=lambda w: PATHS.integrity(w.model),
    output:
        PATHS.metric("{metric}", "{model}"),
    log:
        PATHS.logs("metrics/{metric}/{model}.log"),
    benchmark:
        PATHS.benchmarks("metrics/{metric}/{model}.tsv")
    wildcard_constraints:
        metric="|".join([*rules.geometry.output.keys(), "similarity"]),
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        code=code("gather.py"),
        checkpoints=lambda w: CHECKPOINT_PARAMS[w.model],
        corpora=EXTRACT_CORPORA,
        model=lambda w: w.model,
    script:
        "../scripts/gather.py"
