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


ORIGINS_FIGURES = [
    "rogue_share",
    "massive_ratio",
    "frequency_last",
    "frequency_by_step",
]


rule origins_figures:
    """Where anisotropy comes from, one model over training: the share of the mean cosine in
    the top rogue dimensions, the massive-activation ratio, and the geometry of train-frequency
    buckets (at the last checkpoint and over training); one job, matplotlib imported once.
    """
    input:
        dimensions=PATHS.metric("dimensions", "{model}"),
        frequency=PATHS.metric("frequency", "{model}"),
    output:
        rogue_share=report(
            PATHS.figure("origins", "rogue_share/{model}", "png"),
            caption="../report/origins/rogue_share.rst",
            category="Where anisotropy comes from",
            subcategory="{model}",
        ),
        massive_ratio=report(
            PATHS.figure("origins", "massive_ratio/{model}", "png"),
            caption="../report/origins/massive_ratio.rst",
            category="Where anisotropy comes from",
            subcategory="{model}",
        ),
        frequency_last=report(
            PATHS.figure("origins", "frequency_last/{model}", "png"),
            caption="../report/origins/frequency_last.rst",
            category="Where anisotropy comes from",
            subcategory="{model}",
        ),
        frequency_by_step=report(
            PATHS.figure("origins", "frequency_by_step/{model}", "png"),
            caption="../report/origins/frequency_by_step.rst",
            category="Where anisotropy comes from",
            subcategory="{model}",
        ),
        pdf=[PATHS.figure("origins", f"{n}/{{model}}", "pdf") for n in ORIGINS_FIGURES],
    log:
        PATHS.logs("figures/origins/{model}.log"),
    benchmark:
        PATHS.benchmarks("figures/origins/{model}.tsv")
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        code=code("origins_figures.py"),
        model=lambda w: w.model,
    script:
        "../scripts/origins_figures.py"


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
        expand(PATHS.metric("dimensions", "{model}"), model=GEOMETRY_MODELS),
        expand(PATHS.metric("frequency", "{model}"), model=GEOMETRY_MODELS),
        expand(
            PATHS.figure("origins", "{name}/{model}", "{ext}"),
            name=ORIGINS_FIGURES,
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
