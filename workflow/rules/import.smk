# Rules of the 'cohort' step for real data (issue 10; DESIGN §3): import a dataset in its source format
# (config data.source: aasce | buu-lspine | folder, from data.path) into the canonical dataset data/raw/<name>/.
# Subject/image ids are salted hashes (data.salt, else env VCMEASURE_SALT); the mapping to source names goes
# only to .private/<name>_mapping.csv, outside every tracked path.
# The salt is not a param: params are stored in .snakemake/metadata; the script reads it from the config or
# the environment itself.


if config["data"]["source"] != "synthetic":
    if not config["data"]["path"]:
        raise WorkflowError(
            f"config data.path: required when data.source is {config['data']['source']!r} (the source folder)"
        )

    rule import_dataset:
        input:
            source=config["data"]["path"],
        output:
            dataset=directory(DATASET_DIR),
        params:
            source=config["data"]["source"],
            mapping=f".private/{DATASET}_mapping.csv",
            allow_skipped=config["data"].get("allow_skipped", False),
        log:
            f"logs/import_dataset/{DATASET}.log",
        benchmark:
            f"benchmarks/import_dataset/{DATASET}.tsv"
        conda:
            ENV
        script:
            "../scripts/import_dataset.py"
