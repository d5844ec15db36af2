rule birth_variant:
    """Train one variant on the bigram-trigger language, with probes every eval_every steps."""
    input:
        train=lambda w: f"{corpus_dir(BIRTH['corpus'])}/train.jsonl",
    output:
        metrics=f"{RESULTS}/induction/{{variant}}.nc",
        attention=f"{RESULTS}/induction/{{variant}}_attention.nc",
    log:
        f"{LOGS}/induction/{{variant}}.log",
    benchmark:
        f"{BENCH}/induction/{{variant}}.tsv"
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


rule induction_figures:
    """Training curves, memory probes and attention maps of every variant."""
    input:
        metrics=expand(f"{RESULTS}/induction/{{v}}.nc", v=BIRTH_VARIANTS),
        attention=expand(f"{RESULTS}/induction/{{v}}_attention.nc", v=BIRTH_VARIANTS),
    output:
        **{
            f"{name}_{ext}": (
                report(
                    f"{RESULTS}/figures/induction/{name}.{ext}",
                    caption=f"../report/induction/{name}.rst",
                    category="Birth of a transformer",
                )
                if ext == "png"
                else f"{RESULTS}/figures/induction/{name}.{ext}"
            )
            for name in BIRTH_FIGURES
            for ext in ("png", "pdf")
        },
    log:
        f"{LOGS}/figures/induction.log",
    benchmark:
        f"{BENCH}/figures/induction.tsv"
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        code=code("induction_figures.py"),
        variants=list(BIRTH_VARIANTS),
        settings=BIRTH_VARIANTS,
    script:
        "../scripts/induction_figures.py"


rule induction:
    """Figures of 'Birth of a Transformer: A Memory Viewpoint' (Bietti et al. 2023)."""
    input:
        expand(f"{RESULTS}/induction/{{v}}.nc", v=BIRTH_VARIANTS),
        expand(f"{RESULTS}/induction/{{v}}_attention.nc", v=BIRTH_VARIANTS),
        expand(
            f"{RESULTS}/figures/induction/{{f}}.{{ext}}",
            f=BIRTH_FIGURES if BIRTH_VARIANTS else [],
            ext=["png", "pdf"],
        ),
