# Rules of the 'baseline' step: the paper's image-processing method (its Fig. 5; Table 2 "Image processing")
# on the windows of config triplets.eval_source, in the predictions.csv format every method shares.


rule baseline:
    input:
        index=f"{TRIPLETS_EVAL_DIR}/index.csv",
        masks=eval_triplet_masks,
    output:
        predictions="results/regression/image_processing/predictions.csv",
    log:
        "logs/baseline/baseline.log",
    benchmark:
        "benchmarks/baseline/baseline.tsv"
    conda:
        ENV
    script:
        "../scripts/baseline.py"


rule figure5:
    input:
        predictions="results/regression/image_processing/predictions.csv",
        index=f"{TRIPLETS_EVAL_DIR}/index.csv",
        masks=eval_triplet_masks,
    output:
        png=report("results/figures/fig5_vertices.png", caption="../report/fig5_vertices.rst",
                   category="Triplets"),
    log:
        "logs/figure5/figure5.log",
    conda:
        ENV
    script:
        "../scripts/figure5.py"
