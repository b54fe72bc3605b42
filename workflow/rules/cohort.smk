# Rules of the 'cohort' step: the synthetic default data (issue 3). `import_dataset` (other sources) writes the
# same folder and is defined elsewhere; these rules exist only for data.source == synthetic.


if config["data"]["source"] == "synthetic":

    rule simulate_cohort:
        output:
            directory(DATASET_DIR),
        params:
            preset=config["synthetic"]["preset"],
            n_images=config["synthetic"]["n_images"],
            reader_noise_sd=config["synthetic"]["reader_noise_sd"],
            seed=config["seed"],
        threads: 8
        log:
            "logs/simulate_cohort/simulate_cohort.log",
        benchmark:
            "benchmarks/simulate_cohort.tsv"
        conda:
            ENV
        script:
            "../scripts/simulate_cohort.py"

    rule cohort_report:
        input:
            DATASET_DIR,
        output:
            figure=report(
                "results/figures/synthetic_examples.png",
                caption="../report/synthetic_examples.rst",
                category="Cohort",
            ),
            table=report(
                "results/tables/synthetic_cohort.md",
                caption="../report/synthetic_cohort.rst",
                category="Cohort",
            ),
        params:
            clip_limit=config["preprocess"]["clahe_clip_limit"],
            tile_grid=config["preprocess"]["clahe_tile_grid"],
        log:
            "logs/cohort_report/cohort_report.log",
        conda:
            ENV
        script:
            "../scripts/cohort_report.py"
