rule train_tokenizer:
    """A byte-level BPE trained on the train split of a corpus."""
    input:
        train=lambda w: PATHS.corpus(TOKENIZERS[w.tokenizer]["corpus"], "train.jsonl"),
    output:
        directory(PATHS.tokenizer("{tokenizer}")),
    log:
        PATHS.logs("tokenizers/{tokenizer}.log"),
    benchmark:
        PATHS.benchmarks("tokenizers/{tokenizer}.tsv")
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
        directory(PATHS.tokens("{tokenizer}", "{corpus}")),
    log:
        PATHS.logs("tokens/{tokenizer}/{corpus}.log"),
    benchmark:
        PATHS.benchmarks("tokens/{tokenizer}/{corpus}.tsv")
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
