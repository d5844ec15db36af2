rule figure_anisotropy:
    """Anisotropy by layer, one line per checkpoint, one panel per corpus."""
    input:
        PATHS.metric("anisotropy", "{model}"),
    output:
        png=report(
            PATHS.results("figures/anisotropy/{model}.png"),
            caption="../report/anisotropy.rst",
            category="Anisotropy",
            subcategory="{model}",
        ),
        pdf=PATHS.results("figures/anisotropy/{model}.pdf"),
    log:
        PATHS.logs("figures/anisotropy/{model}.log"),
    benchmark:
        PATHS.benchmarks("figures/anisotropy/{model}.tsv")
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
            PATHS.results("figures/anisotropy/{model}.{ext}"),
            model=GEOMETRY_MODELS,
            ext=["png", "pdf"],
        ),
        expand(PATHS.metric("anisotropy", "{model}"), model=GEOMETRY_MODELS),


rule manifest:
    """results/manifest.tsv: path, sha256, size, producing rule, config hash, code hash."""
    input:
        manifest_targets,
    output:
        PATHS.results("manifest.tsv"),
    log:
        PATHS.logs("manifest.log"),
    benchmark:
        PATHS.benchmarks("manifest.tsv")
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
