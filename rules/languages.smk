# Languages study (the per-language LLM-Microscope study): what it builds comes from
# repgeom.languages.plan.
from repgeom.languages.plan import derived_inputs

LANGUAGES = RUN.studies["languages"]
LANGUAGE_GROUPS = LANGUAGES["groups"]
LANGUAGE_PAIRS = LANGUAGES["pairs"]
# the groups of the per-language dataset: the language groups, then the other pair sets
LANGUAGE_DATASET_GROUPS = LANGUAGES["dataset_groups"]
LANGUAGE_CHECKPOINTS = LANGUAGES["checkpoints"]
LANGUAGE_CORPORA = LANGUAGES["corpora"]
LANGUAGE_FIGURE_FILES = LANGUAGES["figure_files"]
LANGUAGE_GRAMMATICALITY_OUTPUT = LANGUAGES["grammaticality_output"]
# the aligned corpora have their own corpus rule (languages_corpus), so that editing the
# study's readers reruns them and not the spine's corpora
ALIGNED_CORPUS_PATTERN = (
    "|".join(re.escape(c) for c, v in CORPORA.items() if v["kind"] == "aligned")
    or "(?!)"
)


ruleorder: languages_corpus > corpus


rule languages_corpus:
    """An aligned corpus of the languages study (one language, script or side of a set of
    minimal pairs): every sentence in eval, in order; train is a copy."""
    input:
        lambda w: derived_inputs(CORPORA[w.corpus], PATHS),
    output:
        train=PATHS.corpus("{corpus}", "train.jsonl"),
        eval=PATHS.corpus("{corpus}", "eval.jsonl"),
        stats=PATHS.corpus("{corpus}", "stats.json"),
    log:
        PATHS.logs("corpus/{corpus}.log"),
    benchmark:
        PATHS.benchmarks("corpus/{corpus}.tsv")
    wildcard_constraints:
        corpus=ALIGNED_CORPUS_PATTERN,
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        code=code("languages_corpus.py"),
        corpus=lambda w: CORPORA[w.corpus],
        name=lambda w: w.corpus,
    script:
        "../scripts/languages_corpus.py"


rule languages_metrics:
    """ID, anisotropy and divergence from a reference per language, layer and level for one
    checkpoint; grammatical vs ungrammatical ID with a paired bootstrap."""
    input:
        lambda w: [PATHS.activations(w.model, w.step, c) for c in LANGUAGE_CORPORA],
    output:
        languages=PATHS.metric("languages", "{model}", "{step}"),
        grammaticality=LANGUAGE_GRAMMATICALITY_OUTPUT,
    log:
        PATHS.logs("metrics/languages/{model}/{step}.log"),
    benchmark:
        PATHS.benchmarks("metrics/languages/{model}/{step}.tsv")
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=8000,
    params:
        code=code("languages_metrics.py"),
        options=LANGUAGES["options"],
        groups=LANGUAGE_DATASET_GROUPS,
        pairs=LANGUAGE_PAIRS,
        corpora=LANGUAGE_CORPORA,
        model=lambda w: w.model,
        step=lambda w: w.step,
    script:
        "../scripts/languages_metrics.py"


rule languages_figures:
    """Figures of the languages study for one checkpoint, one set per group."""
    input:
        languages=PATHS.metric("languages", "{model}", "{step}"),
        grammaticality=LANGUAGE_GRAMMATICALITY_OUTPUT,
    output:
        id_anisotropy=report(
            LANGUAGE_FIGURE_FILES["id_anisotropy"],
            caption="../report/languages/id_anisotropy.rst",
            category="Languages",
            subcategory="{model} {step}",
        ),
        id_by_scale=report(
            LANGUAGE_FIGURE_FILES["id_by_scale"],
            caption="../report/languages/id_by_scale.rst",
            category="Languages",
            subcategory="{model} {step}",
        ),
        heatmaps=report(
            LANGUAGE_FIGURE_FILES["heatmaps"],
            caption="../report/languages/heatmaps.rst",
            category="Languages",
            subcategory="{model} {step}",
        ),
        divergence=report(
            LANGUAGE_FIGURE_FILES["divergence"],
            caption="../report/languages/divergence.rst",
            category="Languages",
            subcategory="{model} {step}",
        ),
        scripts=report(
            LANGUAGE_FIGURE_FILES["scripts"],
            caption="../report/languages/scripts.rst",
            category="Languages",
            subcategory="{model} {step}",
        ),
        grammaticality=report(
            LANGUAGE_FIGURE_FILES["grammaticality"],
            caption="../report/languages/grammaticality.rst",
            category="Languages",
            subcategory="{model} {step}",
        ),
        pdf=LANGUAGE_FIGURE_FILES["pdf"],
    log:
        PATHS.logs("figures/languages/{model}/{step}.log"),
    benchmark:
        PATHS.benchmarks("figures/languages/{model}/{step}.tsv")
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        code=code("languages_figures.py"),
        groups=LANGUAGE_DATASET_GROUPS,
        pairs=LANGUAGE_PAIRS,
        title=lambda w: f"{w.model} · {w.step}",
    script:
        "../scripts/languages_figures.py"


rule languages_scores:
    """Correlation of per-language scores with the mean ID over layers: a table (CSV and
    LaTeX) over checkpoints and a scatter plot per checkpoint."""
    input:
        scores=LANGUAGES["scores"] or [],
        datasets=[PATHS.metric("languages", m, s) for m, s in LANGUAGE_CHECKPOINTS],
    output:
        csv=PATHS.results("tables/languages/score_correlation.csv"),
        tex=PATHS.results("tables/languages/score_correlation.tex"),
        scatter=report(
            [
                PATHS.results(f"figures/languages/{m}/{s}/score_correlation.png")
                for m, s in LANGUAGE_CHECKPOINTS
            ],
            caption="../report/languages/scores.rst",
            category="Languages",
            subcategory="scores",
        ),
        pdf=[
            PATHS.results(f"figures/languages/{m}/{s}/score_correlation.pdf")
            for m, s in LANGUAGE_CHECKPOINTS
        ],
    log:
        PATHS.logs("figures/languages/score_correlation.log"),
    benchmark:
        PATHS.benchmarks("figures/languages/score_correlation.tsv")
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        code=code("languages_scores.py"),
        checkpoints=LANGUAGE_CHECKPOINTS,
        groups=[g["name"] for g in LANGUAGE_GROUPS],
    script:
        "../scripts/languages_scores.py"


rule languages:
    """The languages study: per-language metrics, figures and (with scores) the correlation."""
    input:
        LANGUAGES.targets,
