rule corpus:
    """Documents of a corpus, split into train and eval by a stable hash of their content."""
    input:
        corpus_files,
    output:
        train=f"{RESULTS}/corpora/{{corpus}}/train.jsonl",
        eval=f"{RESULTS}/corpora/{{corpus}}/eval.jsonl",
        stats=f"{RESULTS}/corpora/{{corpus}}/stats.json",
    log:
        f"{LOGS}/corpus/{{corpus}}.log",
    benchmark:
        f"{BENCH}/corpus/{{corpus}}.tsv"
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
