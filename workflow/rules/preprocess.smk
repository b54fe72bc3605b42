# Rules of the 'preprocess' step (DESIGN §5 Orientation and Preprocessing; paper Methods, preprocessing).
# One job for the whole dataset (threads inside), so the DAG stays small however many images there are.


rule preprocess:
    input:
        dataset=DATASET_DIR,
    output:
        images=directory("results/preprocessed/images"),
        masks=directory("results/preprocessed/masks"),
        vertebrae="results/preprocessed/vertebrae.csv",
        transforms="results/preprocessed/transforms.csv",
    params:
        size=config["preprocess"]["image_size"],
        clip_limit=config["preprocess"]["clahe_clip_limit"],
        tile_grid=config["preprocess"]["clahe_tile_grid"],
    threads: 8
    resources:
        mem_mb=4000,
    log:
        "logs/preprocess/preprocess.log",
    benchmark:
        "benchmarks/preprocess/preprocess.tsv"
    conda:
        ENV
    script:
        "../scripts/preprocess.py"
