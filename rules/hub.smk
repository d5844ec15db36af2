# Hub revisions released from the HF cache after the last job that loads them
# (disk.release_hub_revisions).


HUB_RELEASES = (
    plan.hub_release_inputs(config, STEPS, RUN.checkpoint_readers, RUN.tokenized, PATHS)
    if DISK["release_hub_revisions"]
    else {}
)


rule release_hub_revision:
    """Remove a hub revision from the HF cache once every job that loads it is done, when this
    workflow downloaded it (disk.release_hub_revisions); records what was freed."""
    input:
        lambda w: HUB_RELEASES[(w.model, w.step)],
    output:
        PATHS.hub_release("{model}", "{step}"),
    log:
        PATHS.logs("hub/{model}/{step}.log"),
    benchmark:
        PATHS.benchmarks("hub/{model}/{step}.tsv")
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        code=code("release_hub_revision.py"),
        source=lambda w: model_source(w.model, w.step),
        downloaded=lambda w: HUB_DOWNLOADED[(w.model, w.step)],
        model=lambda w: w.model,
        step=lambda w: w.step,
    script:
        "../scripts/release_hub_revision.py"
