BOTTLENECK = RUN.studies["bottleneck"]
BN = config["bottleneck"]
BN_MODELS = BOTTLENECK["models"]
BN_MODEL_PATTERN = "|".join(re.escape(m) for m in BN_MODELS) or "(?!)"
BN_CORPORA = BOTTLENECK["eval_corpora"]
BN_HEADS = BOTTLENECK["heads"]
BN_HEADS_CORPUS = BOTTLENECK["heads_corpus"]
BN_NGRAM = BOTTLENECK["ngram"]
BN_HEADS_OPTIONS = BOTTLENECK["heads_options"]
BN_NGRAM_OPTIONS = BOTTLENECK["ngram_options"]
BN_FIGURES = BOTTLENECK["figures"]
BN_TABLES = BOTTLENECK["tables"]


# Softmax-bottleneck study (Godey et al. 2024): saturation, LM-head spectra, rank-restricted
# heads on frozen final representations, 5-gram rank estimates. What it builds comes from
# repgeom.bottleneck.plan.


rule bottleneck_saturation:
    """Eval loss (stored by extraction) and last-layer mean cosine of one model over every
    checkpoint and eval corpus."""
    input:
        lambda w: [
            PATHS.activations(w.model, s, c)
            for s in STEPS[w.model]
            for c in BN_CORPORA
        ],
    output:
        eval_loss=PATHS.metric("eval_loss", "{model}"),
        cosine=PATHS.metric("last_layer_cosine", "{model}"),
    log:
        PATHS.logs("bottleneck/saturation/{model}.log"),
    benchmark:
        PATHS.benchmarks("bottleneck/saturation/{model}.tsv")
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        code=code("bottleneck_saturation.py"),
        model=lambda w: w.model,
        checkpoints=lambda w: CHECKPOINT_PARAMS[w.model],
        corpora=BN_CORPORA,
    script:
        "../scripts/bottleneck_saturation.py"


rule bottleneck_lm_head:
    """Singular values and singular entropy of the LM head of one checkpoint."""
    input:
        checkpoint=checkpoint_input,
    output:
        PATHS.metric("lm_head", "{model}", "{step}"),
    log:
        PATHS.logs("bottleneck/lm_head/{model}/{step}.log"),
    benchmark:
        PATHS.benchmarks("bottleneck/lm_head/{model}/{step}.tsv")
    wildcard_constraints:
        model=BN_MODEL_PATTERN,
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        code=code("bottleneck_lm_head.py"),
        method=BN["spectrum_method"],
        source=lambda w: model_source(w.model, w.step),
        model=lambda w: w.model,
        step=lambda w: w.step,
    script:
        "../scripts/bottleneck_lm_head.py"


rule bottleneck_lm_head_gather:
    """The LM-head spectra of one model over its checkpoints."""
    input:
        lambda w: [PATHS.metric("lm_head", w.model, s) for s in STEPS[w.model]],
    output:
        PATHS.metric("lm_head", "{model}"),
    log:
        PATHS.logs("bottleneck/lm_head/{model}.log"),
    benchmark:
        PATHS.benchmarks("bottleneck/lm_head/{model}.tsv")
    wildcard_constraints:
        model=BN_MODEL_PATTERN,
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        code=code("bottleneck_lm_head_gather.py"),
        model=lambda w: w.model,
        checkpoints=lambda w: CHECKPOINT_PARAMS[w.model],
    script:
        "../scripts/bottleneck_lm_head_gather.py"


rule bottleneck_heads:
    """Heads of every rank of the grid, a full-rank head and the model's own head, trained on
    the frozen final representations of train windows and evaluated on the eval store.
    """
    input:
        store=lambda w: PATHS.activations(w.model, w.step, BN_HEADS_CORPUS),
        tokens=lambda w: model_tokens(w.model, BN_HEADS_CORPUS),
        checkpoint=checkpoint_input,
    output:
        heads=PATHS.heads("{model}", "{step}"),
        features=temp(directory(PATHS.results("heads/{model}/{step}.train.zarr"))),
    log:
        PATHS.logs("bottleneck/heads/{model}/{step}.log"),
    benchmark:
        PATHS.benchmarks("bottleneck/heads/{model}/{step}.tsv")
    conda:
        "../envs/core.yaml"
    threads: BN["heads"]["threads"]
    resources:
        mem_mb=lambda w: BOTTLENECK["heads_mem_mb"][w.model],
        gpu=1 if BN["heads"]["device"] != "cpu" else 0,
    params:
        code=code("bottleneck_heads.py"),
        heads=BN_HEADS_OPTIONS,
        memory_mb=BN["heads"]["memory_mb"],
        extraction={k: config["extraction"][k] for k in ("batch_size", "dtype")},
        source=lambda w: model_source(w.model, w.step),
        model=lambda w: w.model,
        step=lambda w: w.step,
        corpus=BN_HEADS_CORPUS,
    script:
        "../scripts/bottleneck_heads.py"


rule bottleneck_ngram:
    """W-error of the 5-gram next-token matrix of a tokenized corpus's train split."""
    input:
        tokens=lambda w: PATHS.tokens(w.tokenizer, w.corpus),
    output:
        PATHS.ngram("{tokenizer}", "{corpus}"),
    log:
        PATHS.logs("bottleneck/ngram/{tokenizer}/{corpus}.log"),
    benchmark:
        PATHS.benchmarks("bottleneck/ngram/{tokenizer}/{corpus}.tsv")
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=BN["ngram"]["memory_mb"] or 4000,
    params:
        code=code("bottleneck_ngram.py"),
        ngram=BN_NGRAM_OPTIONS,
        memory_mb=BN["ngram"]["memory_mb"],
        tokenizer=lambda w: w.tokenizer,
        corpus=lambda w: w.corpus,
    script:
        "../scripts/bottleneck_ngram.py"


rule bottleneck_figures:
    """Every figure and table of the study, from the datasets (one job: matplotlib is imported
    once)."""
    input:
        eval_loss=[PATHS.metric("eval_loss", m) for m in BN_MODELS],
        cosine=[PATHS.metric("last_layer_cosine", m) for m in BN_MODELS],
        spectrum=[PATHS.metric("lm_head", m) for m in BN_MODELS],
        heads=[PATHS.heads(m, s) for m, s in BN_HEADS],
        ngram=[PATHS.ngram(t, c) for t, c in BN_NGRAM],
    output:
        eval_loss=report(
            BN_FIGURES["eval_loss"],
            caption="../report/bottleneck/eval_loss.rst",
            category="Softmax bottleneck",
        ),
        spectrum=report(
            BN_FIGURES["spectrum"],
            caption="../report/bottleneck/lm_head_spectrum.rst",
            category="Softmax bottleneck",
        ),
        entropy=report(
            BN_FIGURES["entropy"],
            caption="../report/bottleneck/entropy_cosine_loss.rst",
            category="Softmax bottleneck",
        ),
        heads=report(
            BN_FIGURES["heads"],
            caption="../report/bottleneck/heads_perplexity.rst",
            category="Softmax bottleneck",
        ),
        ngram=report(
            BN_FIGURES["ngram"],
            caption="../report/bottleneck/ngram_werror.rst",
            category="Softmax bottleneck",
        ),
        pdf=BN_FIGURES["pdf"],
        best_vs_final=report(
            BN_TABLES["best_vs_final"],
            caption="../report/bottleneck/best_vs_final.rst",
            category="Softmax bottleneck",
        ),
        ngram_thresholds=report(
            BN_TABLES["ngram_thresholds"],
            caption="../report/bottleneck/ngram_thresholds.rst",
            category="Softmax bottleneck",
        ),
        tex=BN_TABLES["tex"],
    log:
        PATHS.logs("bottleneck/figures.log"),
    benchmark:
        PATHS.benchmarks("bottleneck/figures.tsv")
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        code=code("bottleneck_figures.py"),
        models=BN_MODELS,
        corpus=BN_CORPORA[0] if BN_CORPORA else None,
        heads=[f"{m} · {s}" for m, s in BN_HEADS],
        pairs=BN_NGRAM,
        thresholds=BN["ngram"]["thresholds"],
    script:
        "../scripts/bottleneck_figures.py"


rule bottleneck:
    """The softmax-bottleneck study: datasets, figures and tables."""
    input:
        BOTTLENECK.targets,
