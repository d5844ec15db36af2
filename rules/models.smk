# One training rule per trained model: its checkpoints are the rule's outputs, so that the
# static DAG knows every step directory before anything runs.
for _name, _model in MODELS.items():
    if _model["source"] != "train":
        continue

    rule:
        name:
            f"train_{_name}"
        input:
            tokens=model_tokens(_name, _model["corpus"]),
            tokenizer=tokenizer_dir(_model["tokenizer"]),
        output:
            log_nc=PATHS.results(f"models/{_name}/training.nc"),
            checkpoints=[directory(PATHS.checkpoint(_name, s)) for s in STEPS[_name]],
        log:
            PATHS.logs(f"models/{_name}.log"),
        benchmark:
            PATHS.benchmarks(f"models/{_name}.tsv")
        conda:
            "../envs/core.yaml"
        threads: _model["training"]["threads"]
        resources:
            mem_mb=8000,
            gpu=1 if _model["training"]["device"] != "cpu" else 0,
        params:
            code=code("train_model.py"),
            name=_name,
            architecture=_model["architecture"],
            model_config=_model["config"],
            training=_model["training"],
            steps=STEPS[_name],
        script:
            "../scripts/train_model.py"
