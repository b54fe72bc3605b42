# Rules of the 'triplets' step (paper "Division into three vertebral bodies", Fig. 3; DESIGN §4 triplet
# acceptance; ARCHITECTURE.md). One job per mask source: `predicted` (the selected network's masks, read
# through the select_architecture checkpoint) or `groundtruth` (the preprocessed ground-truth masks).

TRIPLET_SOURCES = "predicted|groundtruth"
TRIPLETS_EVAL_DIR = f"results/triplets/{config['triplets']['eval_source']}"


rule extract_triplets:
    input:
        masks=triplet_masks,
        gt_masks="results/preprocessed/masks",
        vertebrae="results/preprocessed/vertebrae.csv",
        dataset=DATASET_DIR,  # measurements.csv is read from it (the cohort rule writes the folder)
        split="results/split/split.csv",
    output:
        windows="results/triplets/{source}/windows.npz",
        index="results/triplets/{source}/index.csv",
        rejections="results/triplets/{source}/rejections.csv",
        summary_md=report("results/triplets/{source}/summary.md", category="Triplets",
                          labels={"source": "{source}"}),
        summary_json="results/triplets/{source}/summary.json",
    wildcard_constraints:
        source=TRIPLET_SOURCES,
    params:
        window_size=config["triplets"]["window_size"],
        fracture_threshold=config["fracture_threshold"],
    log:
        "logs/extract_triplets/{source}.log",
    benchmark:
        "benchmarks/extract_triplets/{source}.tsv"
    conda:
        ENV
    script:
        "../scripts/extract_triplets.py"


rule figure3:
    input:
        masks=eval_triplet_masks,
        index=f"{TRIPLETS_EVAL_DIR}/index.csv",
        windows=f"{TRIPLETS_EVAL_DIR}/windows.npz",
        rejections=f"{TRIPLETS_EVAL_DIR}/rejections.csv",
    output:
        png=report("results/figures/fig3_triplets.png", caption="../report/fig3_triplets.rst",
                   category="Triplets"),
    log:
        "logs/figure3/figure3.log",
    conda:
        ENV
    script:
        "../scripts/figure3.py"
