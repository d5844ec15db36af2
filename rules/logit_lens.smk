# The logit lens over training: each layer of each checkpoint decoded by the model's own LM
# head (computed in the extraction pass, on a seeded sample of logit_lens.tokens positions of
# each store), for the models of logit_lens.models (null: those with a causal head). What it
# builds comes from repgeom.logit_lens.plan.
LENS_MODELS = RUN.studies["logit_lens"]["models"]
LENS_OUT = RUN.studies["logit_lens"]["outputs"]


rule logit_lens_gather:
    """The logit lens of one model over every checkpoint and extraction corpus."""
    input:
        lambda w: [
            PATHS.activations(w.model, s, c)
            for s in STEPS[w.model]
            for c in EXTRACT_CORPORA
        ],
    output:
        PATHS.metric("logit_lens", "{model}"),
    log:
        PATHS.logs("metrics/logit_lens/{model}.log"),
    benchmark:
        PATHS.benchmarks("metrics/logit_lens/{model}.tsv")
    wildcard_constraints:
        model="|".join(re.escape(m) for m in LENS_MODELS) or "(?!)",
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        code=code("logit_lens_gather.py"),
        model=lambda w: w.model,
        checkpoints=lambda w: CHECKPOINT_PARAMS[w.model],
        corpora=EXTRACT_CORPORA,
    script:
        "../scripts/logit_lens_gather.py"


rule logit_lens_figures:
    """Loss and top-1 agreement of the logit lens against layer, and the table."""
    input:
        [PATHS.metric("logit_lens", m) for m in LENS_MODELS],
    output:
        loss_png=report(
            LENS_OUT["loss_png"],
            caption="../report/logit_lens/loss_by_layer.rst",
            category="Logit lens",
        ),
        loss_pdf=LENS_OUT["loss_pdf"],
        agreement_png=report(
            LENS_OUT["agreement_png"],
            caption="../report/logit_lens/agreement_by_layer.rst",
            category="Logit lens",
        ),
        agreement_pdf=LENS_OUT["agreement_pdf"],
        csv=LENS_OUT["csv"],
        tex=LENS_OUT["tex"],
    log:
        PATHS.logs("figures/logit_lens.log"),
    benchmark:
        PATHS.benchmarks("figures/logit_lens.tsv")
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        code=code("logit_lens_figures.py"),
        models=LENS_MODELS,
    script:
        "../scripts/logit_lens_figures.py"


rule logit_lens:
    """The logit lens over training: datasets, figures and the table."""
    input:
        RUN.studies["logit_lens"].targets,
