# Birth of a Transformer (Bietti et al. 2023): runs when the config names its section; what it
# builds comes from repgeom.birth.plan.
BIRTH = config["birth"]
BIRTH_VARIANTS = RUN.studies["birth"]["variants"]
BIRTH_FIGURES = RUN.studies["birth"]["figures"]


rule birth_variant:
    """Train one variant on the bigram-trigger language, with probes every eval_every steps."""
    input:
        train=lambda w: PATHS.corpus(BIRTH["corpus"], "train.jsonl"),
    output:
        metrics=PATHS.results("birth/{variant}.nc"),
        attention=PATHS.results("birth/{variant}_attention.nc"),
    log:
        PATHS.logs("birth/{variant}.log"),
    benchmark:
        PATHS.benchmarks("birth/{variant}.tsv")
    wildcard_constraints:
        variant="|".join(BIRTH_VARIANTS) or "(?!)",
    conda:
        "../envs/core.yaml"
    threads: BIRTH["threads"]
    resources:
        mem_mb=4000,
        gpu=1 if BIRTH["device"] != "cpu" else 0,
    params:
        code=code("birth_variant.py"),
        variant=lambda w: BIRTH_VARIANTS[w.variant],
        device=BIRTH["device"],
    script:
        "../scripts/birth_variant.py"


rule birth_figures:
    """Training curves, memory probes and attention maps of every variant."""
    input:
        metrics=expand(PATHS.results("birth/{v}.nc"), v=BIRTH_VARIANTS),
        attention=expand(PATHS.results("birth/{v}_attention.nc"), v=BIRTH_VARIANTS),
    output:
        **{
            f"{name}_{ext}": (
                report(
                    PATHS.results(f"figures/birth/{name}.{ext}"),
                    caption=f"../report/birth/{name}.rst",
                    category="Birth of a transformer",
                )
                if ext == "png"
                else PATHS.results(f"figures/birth/{name}.{ext}")
            )
            for name in BIRTH_FIGURES
            for ext in ("png", "pdf")
        },
    log:
        PATHS.logs("figures/birth.log"),
    benchmark:
        PATHS.benchmarks("figures/birth.tsv")
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        code=code("birth_figures.py"),
        variants=list(BIRTH_VARIANTS),
        settings=BIRTH_VARIANTS,
    script:
        "../scripts/birth_figures.py"


rule birth:
    """Figures of 'Birth of a Transformer: A Memory Viewpoint' (Bietti et al. 2023)."""
    input:
        RUN.studies["birth"].targets,
