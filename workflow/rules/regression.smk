# Rules of the 'regression' step (paper Methods "Vertebral compression measurement model based on CNN",
# Table 2; DESIGN §5; ARCHITECTURE.md). One training job per model (wildcard `model`, limited to config
# regression.models), each claiming a GPU slot, on the windows of triplets.train_source; prediction of
# every window of triplets.eval_source.

REG = config["regression"]
REG_TRAIN_THREADS, REG_TRAIN_MEM_MB, REG_TRAIN_RUNTIME = train_resources()
REG_MODEL_PATTERN = "|".join(REG_MODELS)
REG_TRAIN_DIR = f"results/triplets/{config['triplets']['train_source']}"
REG_EVAL_DIR = f"results/triplets/{config['triplets']['eval_source']}"


rule train_regression:
    input:
        windows=f"{REG_TRAIN_DIR}/windows.npz",
        index=f"{REG_TRAIN_DIR}/index.csv",
    output:
        model="results/regression/{model}/model.keras",
        history="results/regression/{model}/history.csv",
        curve=report("results/regression/{model}/learning_curve.png", caption="../report/regression_curve.rst",
                     category="Regression", subcategory="Learning curves", labels={"model": "{model}"}),
    wildcard_constraints:
        model=REG_MODEL_PATTERN,
    params:
        checkpoint="results/regression/{model}/checkpoint",
        filters=REG["mrdn_filters"],
        batch_size=REG["batch_size"],
        epochs=REG["epochs"],
        learning_rate=REG["learning_rate"],
        seed=config["seed"],
    threads: REG_TRAIN_THREADS
    resources:
        gpu=1,
        mem_mb=REG_TRAIN_MEM_MB,
        runtime=REG_TRAIN_RUNTIME,
    log:
        "logs/train_regression/{model}.log",
    benchmark:
        "benchmarks/train_regression/{model}.tsv"
    conda:
        ENV
    script:
        "../scripts/train_regression.py"


rule predict_regression:
    input:
        model="results/regression/{model}/model.keras",
        windows=f"{REG_EVAL_DIR}/windows.npz",
        index=f"{REG_EVAL_DIR}/index.csv",
    output:
        predictions="results/regression/{model}/predictions.csv",
    wildcard_constraints:
        model=REG_MODEL_PATTERN,
    params:
        batch_size=REG["batch_size"],
    threads: REG_TRAIN_THREADS
    resources:
        gpu=1,
        mem_mb=REG_TRAIN_MEM_MB,
    log:
        "logs/predict_regression/{model}.log",
    benchmark:
        "benchmarks/predict_regression/{model}.tsv"
    conda:
        ENV
    script:
        "../scripts/predict_regression.py"
