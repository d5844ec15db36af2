rule corpus:
    """Documents of a corpus, split into train and eval by a stable hash of their content."""
    input:
        corpus_files,
    output:
        train=PATHS.corpus("{corpus}", "train.jsonl"),
        eval=PATHS.corpus("{corpus}", "eval.jsonl"),
        stats=PATHS.corpus("{corpus}", "stats.json"),
    log:
        PATHS.logs("corpus/{corpus}.log"),
    benchmark:
        PATHS.benchmarks("corpus/{corpus}.tsv")
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        code=code("corpus.py"),
        corpus=lambda w: CORPORA[w.corpus],
        name=lambda w: w.corpus,
    script:
        "../scripts/corpus.py"


# A text corpus with a url gets a download rule, so that a dry run can plan it offline; a real
# run downloads at parse time (before any job) and stops there if the network is missing.
for _name, _corpus in CORPORA.items():
    if _corpus["kind"] != "text" or not _corpus.get("url"):
        continue

    rule:
        name:
            f"download_{_name}"
        output:
            _corpus["path"],
        log:
            PATHS.logs(f"download/{_name}.log"),
        benchmark:
            PATHS.benchmarks(f"download/{_name}.tsv")
        conda:
            "../envs/core.yaml"
        threads: 1
        resources:
            mem_mb=500,
        params:
            code=code("download.py"),
            url=_corpus["url"],
            sha256=_corpus.get("sha256"),
        script:
            "../scripts/download.py"
