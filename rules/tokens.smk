rule train_tokenizer:
    """A byte-level BPE trained on the train split of a corpus."""
    input:
        train=lambda w: f"{corpus_dir(TOKENIZERS[w.tokenizer]['corpus'])}/train.jsonl",
    output:
        directory(f"{RESULTS}/tokenizers/{{tokenizer}}"),
    log:
        f"{LOGS}/tokenizers/{{tokenizer}}.log",
    benchmark:
        f"{BENCH}/tokenizers/{{tokenizer}}.tsv"
    conda:
        "../envs/core.yaml"
    threads: 2
    resources:
        mem_mb=4000,
    params:
        code=code("train_tokenizer.py"),
        tokenizer=lambda w: TOKENIZERS[w.tokenizer],
    script:
        "../scripts/train_tokenizer.py"


rule tokens:
    """Fixed-length int32 token windows of a corpus, train and eval splits."""
    input:
        unpack(tokens_inputs),
    output:
        directory(f"{RESULTS}/tokens/{{tokenizer}}/{{corpus}}.zarr"),
    log:
        f"{LOGS}/tokens/{{tokenizer}}/{{corpus}}.log",
    benchmark:
        f"{BENCH}/tokens/{{tokenizer}}/{{corpus}}.tsv"
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        code=code("tokens.py"),
        tokenizer=lambda w: TOKENIZERS[w.tokenizer],
        source=lambda w: tokenizer_source(w.tokenizer),
        corpus=lambda w: CORPORA[w.corpus],
    script:
        "../scripts/tokens.py"
