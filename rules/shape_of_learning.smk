# The study runs when the config names its section (its figures read the core metrics); what it
# builds comes from repgeom.shape_of_learning.plan.
SOL = RUN.studies["shape_of_learning"]
SOL_MODELS = SOL["models"]
SOL_FIGURES = SOL["figures"]
SOL_TABLES = SOL["tables"]


rule shape_of_learning_figure:
    """One Shape-of-Learning figure over every model, checkpoint and corpus."""
    input:
        lambda w: expand(
            PATHS.metric(SOL_FIGURES[w.figure][0], f"{{model}}"),
            model=SOL_MODELS,
        ),
    output:
        png=report(
            PATHS.results("figures/shape_of_learning/{figure}.png"),
            caption="../report/shape_of_learning/figure.rst",
            category="Shape of learning",
        ),
        pdf=PATHS.results("figures/shape_of_learning/{figure}.pdf"),
    log:
        PATHS.logs("figures/shape_of_learning/{figure}.log"),
    benchmark:
        PATHS.benchmarks("figures/shape_of_learning/{figure}.tsv")
    wildcard_constraints:
        figure="|".join(SOL_FIGURES),
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        code=code("shape_of_learning_figure.py"),
        models=SOL_MODELS,
        kind=lambda w: "by_step" if w.figure.endswith("by_step") else "by_layer",
        variable=lambda w: SOL_FIGURES[w.figure][1],
        gride=lambda w: SOL["gride"] and w.figure == "intrinsic_dimension_by_layer",
    script:
        "../scripts/shape_of_learning_figure.py"


rule shape_of_learning_scale_figure:
    """GRIDE intrinsic dimension against neighbourhood scale, per layer, for one model and
    corpus."""
    input:
        PATHS.metric("intrinsic_dimension", "{model}"),
    output:
        png=report(
            PATHS.results(
                "figures/shape_of_learning/intrinsic_dimension_by_scale/{model}/{corpus}.png"
            ),
            caption="../report/shape_of_learning/by_scale.rst",
            category="Shape of learning",
            subcategory="intrinsic dimension by scale",
        ),
        pdf=PATHS.results(
            "figures/shape_of_learning/intrinsic_dimension_by_scale/{model}/{corpus}.pdf"
        ),
    log:
        PATHS.logs("figures/shape_of_learning/by_scale/{model}/{corpus}.log"),
    benchmark:
        PATHS.benchmarks("figures/shape_of_learning/by_scale/{model}/{corpus}.tsv")
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        code=code("shape_of_learning_scale_figure.py"),
        corpus=lambda w: w.corpus,
    script:
        "../scripts/shape_of_learning_scale_figure.py"


rule shape_of_learning_table:
    """A metric as CSV and LaTeX: model × step × corpus × positions × layer."""
    input:
        expand(PATHS.metric("{{metric}}", "{model}"), model=SOL_MODELS),
    output:
        csv=PATHS.results("tables/shape_of_learning/{metric}.csv"),
        tex=PATHS.results("tables/shape_of_learning/{metric}.tex"),
    log:
        PATHS.logs("tables/shape_of_learning/{metric}.log"),
    benchmark:
        PATHS.benchmarks("tables/shape_of_learning/{metric}.tsv")
    wildcard_constraints:
        metric="|".join(SOL_TABLES),
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        code=code("shape_of_learning_table.py"),
        models=SOL_MODELS,
        variables=lambda w: SOL_TABLES[w.metric],
    script:
        "../scripts/shape_of_learning_table.py"


rule shape_of_learning:
    """Figures and tables of 'The Shape of Learning' (Razzhigaev et al., EACL 2024)."""
    input:
        SOL.targets,
