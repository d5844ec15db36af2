rule figure_anisotropy:
    """Anisotropy by layer, one line per checkpoint, one panel per corpus."""
    input:
        f"{RESULTS}/metrics/anisotropy/{{model}}.nc",
    output:
        png=report(
            f"{RESULTS}/figures/anisotropy/{{model}}.png",
            caption="../report/anisotropy.rst",
            category="Anisotropy",
            subcategory="{model}",
        ),
        pdf=f"{RESULTS}/figures/anisotropy/{{model}}.pdf",
    log:
        f"{LOGS}/figures/anisotropy/{{model}}.log",
    benchmark:
        f"{BENCH}/figures/anisotropy/{{model}}.tsv"
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        code=code("figure_anisotropy.py"),
        model=lambda w: w.model,
    script:
        "../scripts/figure_anisotropy.py"


rule spine:
    """Corpus -> tokens -> checkpoints -> activations -> anisotropy -> figures."""
    input:
        expand(
            f"{RESULTS}/figures/anisotropy/{{model}}.{{ext}}",
            model=GEOMETRY_MODELS,
            ext=["png", "pdf"],
        ),
        expand(f"{RESULTS}/metrics/anisotropy/{{model}}.nc", model=GEOMETRY_MODELS),


rule manifest:
    """results/manifest.tsv: path, sha256, size, producing rule, config hash, code hash."""
    input:
        manifest_targets,
    output:
        f"{RESULTS}/manifest.tsv",
    log:
        f"{LOGS}/manifest.log",
    benchmark:
        f"{BENCH}/manifest.tsv"
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        code=code("manifest.py"),
        producers=lambda w, input: producers(input),
        config_hash=config_hash(config),
    script:
        "../scripts/manifest.py"
