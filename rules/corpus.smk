def corpus_files(wildcards):
    """Local text files a text corpus reads (so that editing them reruns the corpus)."""
    corpus = CORPORA[wildcards.corpus]
    if corpus["kind"] != "text":
        return []
    from repgeom.corpus import resolve_text_paths

    return [str(p) for p in resolve_text_paths(corpus["path"])]


rule corpus:
    """Documents of a corpus, split into train and eval by a stable hash of their content."""
    input:
        corpus_files,
    output:
        train=f"{RESULTS}/corpora/{{corpus}}/train.jsonl",
        eval=f"{RESULTS}/corpora/{{corpus}}/eval.jsonl",
        stats=f"{RESULTS}/corpora/{{corpus}}/stats.json",
    params:
        corpus=lambda w: CORPORA[w.corpus],
        name=lambda w: w.corpus,
    log:
        f"{LOGS}/corpus/{{corpus}}.log",
    benchmark:
        f"{BENCH}/corpus/{{corpus}}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../envs/core.yaml"
    script:
        "../scripts/corpus.py"
