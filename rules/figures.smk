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


rule similarity_layers_figure:
    """CKA between layers (heatmaps) at a few checkpoints and the last, one model and corpus."""
    input:
        PATHS.metric("similarity", "{model}"),
    output:
        png=report(
            PATHS.figure("similarity", "cka_layers/{model}/{corpus}", "png"),
            caption="../report/similarity/cka_layers.rst",
            category="Similarity",
            subcategory="{model}",
        ),
        pdf=PATHS.figure("similarity", "cka_layers/{model}/{corpus}", "pdf"),
    log:
        PATHS.logs("figures/similarity/cka_layers/{model}/{corpus}.log"),
    benchmark:
        PATHS.benchmarks("figures/similarity/cka_layers/{model}/{corpus}.tsv")
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        code=code("similarity_layers_figure.py"),
        model=lambda w: w.model,
        corpus=lambda w: w.corpus,
    script:
        "../scripts/similarity_layers_figure.py"


rule similarity_to_final_figure:
    """CKA of each layer with the final checkpoint over training, one model."""
    input:
        PATHS.metric("similarity", "{model}"),
    output:
        png=report(
            PATHS.figure("similarity", "cka_to_final/{model}", "png"),
            caption="../report/similarity/cka_to_final.rst",
            category="Similarity",
            subcategory="{model}",
        ),
        pdf=PATHS.figure("similarity", "cka_to_final/{model}", "pdf"),
    log:
        PATHS.logs("figures/similarity/cka_to_final/{model}.log"),
    benchmark:
        PATHS.benchmarks("figures/similarity/cka_to_final/{model}.tsv")
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        code=code("similarity_to_final_figure.py"),
        model=lambda w: w.model,
    script:
        "../scripts/similarity_to_final_figure.py"


rule alpha_req_figure:
    """α-ReQ of each layer over training, one model, from its anisotropy dataset."""
    input:
        PATHS.metric("anisotropy", "{model}"),
    output:
        png=report(
            PATHS.figure("similarity", "alpha_req/{model}", "png"),
            caption="../report/similarity/alpha_req.rst",
            category="Similarity",
            subcategory="{model}",
        ),
        pdf=PATHS.figure("similarity", "alpha_req/{model}", "pdf"),
    log:
        PATHS.logs("figures/similarity/alpha_req/{model}.log"),
    benchmark:
        PATHS.benchmarks("figures/similarity/alpha_req/{model}.tsv")
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        code=code("alpha_req_figure.py"),
        model=lambda w: w.model,
    script:
        "../scripts/alpha_req_figure.py"


rule spine:
    """Corpus -> tokens -> checkpoints -> activations -> anisotropy, similarity -> figures."""
    input:
        expand(
            PATHS.results("figures/anisotropy/{model}.{ext}"),
            model=GEOMETRY_MODELS,
            ext=["png", "pdf"],
        ),
        expand(PATHS.metric("anisotropy", "{model}"), model=GEOMETRY_MODELS),
        expand(PATHS.metric("similarity", "{model}"), model=GEOMETRY_MODELS),
        expand(
            PATHS.figure("similarity", "cka_layers/{model}/{corpus}", "{ext}"),
            model=GEOMETRY_MODELS,
            corpus=EXTRACT_CORPORA,
            ext=["png", "pdf"],
        ),
        expand(
            PATHS.figure("similarity", "cka_to_final/{model}", "{ext}"),
            model=GEOMETRY_MODELS,
            ext=["png", "pdf"],
        ),
        expand(
            PATHS.figure("similarity", "alpha_req/{model}", "{ext}"),
            model=GEOMETRY_MODELS,
            ext=["png", "pdf"],
        ),
        [PATHS.fingerprint(m, s) for m in MODELS for s in STEPS[m]],
        expand(PATHS.integrity("{model}"), model=MODELS),
        expand(PATHS.metric("weights", "{model}"), model=WEIGHTS_MODELS),
        expand(
            PATHS.figure("weights", "{model}", "{ext}"),
            model=WEIGHTS_MODELS,
            ext=["png", "pdf"],
        ),


rule manifest:
    """results/manifest.tsv: path, sha256, size, producing rule, config hash, code hash of
    every final artifact and of every file (chunk) of the activation stores kept.
    """
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
    threads: 2
    resources:
        mem_mb=1000,
    params:
        code=code("manifest.py"),
        producers=lambda w, input: producers(input),
        config_hash=config_hash(config),
    script:
        "../scripts/manifest.py"
