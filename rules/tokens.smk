def tokens_inputs(wildcards):
    """A text corpus's documents and the trained tokenizer, when there are any."""
    inputs = {"tokenizer": tokenizer_dir(wildcards.tokenizer)}
    if CORPORA[wildcards.corpus]["kind"] != "random_tokens":
        inputs["train"] = f"{corpus_dir(wildcards.corpus)}/train.jsonl"
        inputs["eval"] = f"{corpus_dir(wildcards.corpus)}/eval.jsonl"
        inputs["stats"] = f"{corpus_dir(wildcards.corpus)}/stats.json"
    return inputs


def tokenizer_source(name):
    """Where a tokenizer is loaded from: its trained directory, or a model's hub id or path."""
    tok = TOKENIZERS[name]
    if tok["kind"] == "train":
        return {"path": f"{RESULTS}/tokenizers/{name}", "revision": None}
    model = MODELS[tok["model"]]
    return model_source(tok["model"], STEPS[tok["model"]][-1])


rule train_tokenizer:
    """A byte-level BPE trained on the train split of a corpus."""
    input:
        train=lambda w: f"{corpus_dir(TOKENIZERS[w.tokenizer]['corpus'])}/train.jsonl",
    output:
        directory(f"{RESULTS}/tokenizers/{{tokenizer}}"),
    params:
        tokenizer=lambda w: TOKENIZERS[w.tokenizer],
    log:
        f"{LOGS}/tokenizers/{{tokenizer}}.log",
    benchmark:
        f"{BENCH}/tokenizers/{{tokenizer}}.tsv"
    threads: 2
    resources:
        mem_mb=4000,
    conda:
        "../envs/core.yaml"
    script:
        "../scripts/train_tokenizer.py"


rule tokens:
    """Fixed-length int32 token windows of a corpus, train and eval splits."""
    input:
        unpack(tokens_inputs),
    output:
        directory(f"{RESULTS}/tokens/{{tokenizer}}/{{corpus}}.zarr"),
    params:
        tokenizer=lambda w: TOKENIZERS[w.tokenizer],
        source=lambda w: tokenizer_source(w.tokenizer),
        corpus=lambda w: CORPORA[w.corpus],
    log:
        f"{LOGS}/tokens/{{tokenizer}}/{{corpus}}.log",
    benchmark:
        f"{BENCH}/tokens/{{tokenizer}}/{{corpus}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        "../envs/core.yaml"
    script:
        "../scripts/tokens.py"
