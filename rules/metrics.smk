rule geometry:
    """Anisotropy family, intrinsic dimension and linearity of one activation store."""
    input:
        activations("{model}", "{step}", "{corpus}"),
    output:
        anisotropy=f"{RESULTS}/metrics/anisotropy/{{model}}/{{step}}/{{corpus}}.nc",
        intrinsic_dimension=f"{RESULTS}/metrics/intrinsic_dimension/{{model}}/{{step}}/{{corpus}}.nc",
        linearity=f"{RESULTS}/metrics/linearity/{{model}}/{{step}}/{{corpus}}.nc",
    log:
        f"{LOGS}/metrics/geometry/{{model}}/{{step}}/{{corpus}}.log",
    benchmark:
        f"{BENCH}/metrics/geometry/{{model}}/{{step}}/{{corpus}}.tsv"
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        code=code("geometry.py"),
        options=config["metrics"]["geometry"],
    script:
        "../scripts/geometry.py"


rule gather_metric:
    """One metric of one model gathered over steps and corpora."""
    input:
        lambda w: [
            f"{RESULTS}/metrics/{w.metric}/{w.model}/{s}/{c}.nc"
            for s in STEPS[w.model]
            for c in EXTRACT_CORPORA
        ],
    output:
        f"{RESULTS}/metrics/{{metric}}/{{model}}.nc",
    log:
        f"{LOGS}/metrics/{{metric}}/{{model}}.log",
    benchmark:
        f"{BENCH}/metrics/{{metric}}/{{model}}.tsv"
    wildcard_constraints:
        metric="|".join(rules.geometry.output.keys()),
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
