rule anisotropy:
    """Anisotropy per layer of one activation store, in one streaming float64 pass."""
    input:
        activations("{model}", "{step}", "{corpus}"),
    output:
        f"{RESULTS}/metrics/anisotropy/{{model}}/{{step}}/{{corpus}}.nc",
    log:
        f"{LOGS}/metrics/anisotropy/{{model}}/{{step}}/{{corpus}}.log",
    benchmark:
        f"{BENCH}/metrics/anisotropy/{{model}}/{{step}}/{{corpus}}.tsv"
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        code=code("anisotropy.py"),
        options=config["metrics"]["anisotropy"],
    script:
        "../scripts/anisotropy.py"


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
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        code=code("gather.py"),
        steps=lambda w: STEPS[w.model],
        corpora=EXTRACT_CORPORA,
    script:
        "../scripts/gather.py"
