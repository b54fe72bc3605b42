# Rules of the 'segmentation' step (paper Methods, Table 1, Fig. 6; DESIGN §4-§5; ARCHITECTURE.md).
# One training job per architecture (wildcard `arch`, limited to config segmentation.architectures), each
# claiming a GPU slot; prediction per architecture; one evaluation over all; a checkpoint picks the best.

SEG = config["segmentation"]
SEG_TRAIN_THREADS, SEG_TRAIN_MEM_MB, SEG_TRAIN_RUNTIME = train_resources()
SEG_ARCH_PATTERN = "|".join(SEG_ARCHS)


rule train_segmentation:
    input:
        images="results/preprocessed/images",
        masks="results/preprocessed/masks",
        split="results/split/split.csv",
    output:
        model="results/segmentation/{arch}/model.keras",
        history="results/segmentation/{arch}/history.csv",
        curve=report("results/segmentation/{arch}/learning_curve.png", caption="../report/learning_curve_seg.rst",
                     category="Segmentation", subcategory="Learning curves", labels={"architecture": "{arch}"}),
    wildcard_constraints:
        arch=SEG_ARCH_PATTERN,
    params:
        checkpoint="results/segmentation/{arch}/checkpoint",
        base_filters=SEG["base_filters"],
        depth=SEG["depth"],
        batch_size=SEG["batch_size"],
        epochs=SEG["epochs"],
        learning_rate=SEG["learning_rate"],
        augment=SEG["augment"],
        seed=config["seed"],
    threads: SEG_TRAIN_THREADS
    resources:
        gpu=1,
        mem_mb=SEG_TRAIN_MEM_MB,
        runtime=SEG_TRAIN_RUNTIME,
    log:
        "logs/train_segmentation/{arch}.log",
    benchmark:
        "benchmarks/train_segmentation/{arch}.tsv"
    conda:
        ENV
    script:
        "../scripts/train_segmentation.py"


rule predict_segmentation:
    input:
        model="results/segmentation/{arch}/model.keras",
        images="results/preprocessed/images",
    output:
        masks=directory("results/segmentation/{arch}/masks"),
    wildcard_constraints:
        arch=SEG_ARCH_PATTERN,
    params:
        threshold=SEG["threshold"],
        min_component_px=SEG["min_component_px"],
        batch_size=SEG["batch_size"],
    threads: SEG_TRAIN_THREADS
    resources:
        gpu=1,
        mem_mb=SEG_TRAIN_MEM_MB,
    log:
        "logs/predict_segmentation/{arch}.log",
    benchmark:
        "benchmarks/predict_segmentation/{arch}.tsv"
    conda:
        ENV
    script:
        "../scripts/predict_segmentation.py"


rule evaluate_segmentation:
    input:
        masks=expand("results/segmentation/{arch}/masks", arch=SEG_ARCHS),
        truth="results/preprocessed/masks",
        split="results/split/split.csv",
    output:
        per_image=expand("results/segmentation/{arch}/per_image.csv", arch=SEG_ARCHS),
        table=report("results/tables/table1_segmentation.csv", caption="../report/table1_segmentation.rst",
                     category="Segmentation"),
        md="results/tables/table1_segmentation.md",
    params:
        archs=SEG_ARCHS,
    log:
        "logs/evaluate_segmentation/evaluate_segmentation.log",
    conda:
        ENV
    script:
        "../scripts/evaluate_segmentation.py"


checkpoint select_architecture:
    input:
        table="results/tables/table1_segmentation.csv",
    output:
        selected="results/segmentation/selected_architecture.txt",
    params:
        archs=SEG_ARCHS,
    log:
        "logs/select_architecture/select_architecture.log",
    conda:
        ENV
    script:
        "../scripts/select_architecture.py"


rule figure6:
    input:
        dataset=DATASET_DIR,
        images="results/preprocessed/images",
        masks=expand("results/segmentation/{arch}/masks", arch=SEG_ARCHS),
        truth="results/preprocessed/masks",
        split="results/split/split.csv",
    output:
        png=report("results/figures/fig6_segmentation.png", caption="../report/fig6_segmentation.rst",
                   category="Segmentation"),
    params:
        archs=SEG_ARCHS,
    log:
        "logs/figure6/figure6.log",
    conda:
        ENV
    script:
        "../scripts/figure6.py"
