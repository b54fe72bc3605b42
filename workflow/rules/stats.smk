# Rules of the 'stats' step (DESIGN §4, §6, §7): Table 2, agreement statistics, Fig. 7, summary.md, metrics.json.

# Methods scored in Table 2: the image-processing baseline, then every configured regression model. Plain lists
# (no input functions), so the inputs and the `methods` param share one order.
STATS_METHODS = ["image_processing", *REG_MODELS]
STATS_PREDICTIONS = expand("results/regression/{method}/predictions.csv", method=STATS_METHODS)


rule table2:
    input:
        predictions=STATS_PREDICTIONS,
        dataset=DATASET_DIR,
    output:
        csv=report("results/tables/table2_regression.csv", caption="../report/table2.rst", category="Regression",
                   subcategory="Table 2"),
        md="results/tables/table2_regression.md",
        true_csv=report("results/tables/table2_regression_true.csv", caption="../report/table2_true.rst",
                        category="Regression", subcategory="Table 2"),
        true_md="results/tables/table2_regression_true.md",
    params:
        methods=STATS_METHODS,
        bootstrap=config["stats"]["bootstrap"],
        seed=config["seed"],
    log:
        "logs/table2/table2.log",
    conda:
        ENV
    script:
        "../scripts/table2.py"


rule agreement:
    input:
        predictions=STATS_PREDICTIONS,
        dataset=DATASET_DIR,
    output:
        json=report("results/stats/agreement.json", caption="../report/agreement.rst", category="Regression",
                    subcategory="Agreement"),
        points="results/stats/bland_altman.csv",
    params:
        methods=STATS_METHODS,
    log:
        "logs/agreement/agreement.log",
    conda:
        ENV
    script:
        "../scripts/agreement.py"


rule figure7:
    input:
        predictions=STATS_PREDICTIONS,
        dataset=DATASET_DIR,
    output:
        png=report("results/figures/fig7_agreement.png", caption="../report/figure7.rst", category="Regression",
                   subcategory="Agreement"),
    params:
        methods=STATS_METHODS,
    log:
        "logs/figure7/figure7.log",
    conda:
        ENV
    script:
        "../scripts/figure7.py"


rule summary:
    input:
        table2="results/tables/table2_regression.csv",
        table2_true="results/tables/table2_regression_true.csv",
        agreement="results/stats/agreement.json",
        table1="results/tables/table1_segmentation.csv",
        selected="results/segmentation/selected_architecture.txt",
        split="results/split/split.csv",
        triplets="results/triplets/predicted/summary.json",
        dataset=DATASET_DIR,
    output:
        md=report("results/summary.md", caption="../report/summary.rst", category="Summary"),
        metrics="results/metrics.json",
    params:
        config=config,
    log:
        "logs/summary/summary.log",
    conda:
        ENV
    script:
        "../scripts/summary.py"
