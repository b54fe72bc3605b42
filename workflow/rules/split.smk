# Rules of the 'split' step (DESIGN §5 Split): 5:1 train:test grouped by subject, stratified, seeded.


rule split:
    input:
        dataset=DATASET_DIR,
    output:
        split="results/split/split.csv",
        summary=report("results/split/summary.md", category="Data"),
    params:
        test_share=config["split"]["test_share"],
        val_share=config["split"]["val_share"],
        strata=config["split"]["strata"],
        seed=config["seed"],
        fracture_threshold=config["fracture_threshold"],
    log:
        "logs/split/split.log",
    conda:
        ENV
    script:
        "../scripts/split.py"
