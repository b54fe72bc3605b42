# Rules of the 'measure' step (issue 12; paper Discussion "applying this algorithm to PACS"; ARCHITECTURE.md):
# export_models gathers what inference needs into results/models/ (the architecture picked by the checkpoint
# select_architecture, MRDN, manifest.json); `measure` (optional target, not in rule all) runs
# `vcmeasure measure` on the folder config measure.input (input functions in common.smk):
#   snakemake measure --cores 2 --config 'measure={input: /path/to/radiographs}'


rule export_models:
    input:
        selected="results/segmentation/selected_architecture.txt",
        segmentation=selected_segmentation_model,
        regression="results/regression/mrdn/model.keras",
    output:
        models=directory("results/models"),
    params:
        image_size=config["preprocess"]["image_size"],
        clahe_clip_limit=config["preprocess"]["clahe_clip_limit"],
        clahe_tile_grid=config["preprocess"]["clahe_tile_grid"],
        threshold=config["segmentation"]["threshold"],
        min_component_px=config["segmentation"]["min_component_px"],
        window_size=config["triplets"]["window_size"],
    log:
        "logs/export_models/export_models.log",
    conda:
        ENV
    script:
        "../scripts/export_models.py"


rule measure:
    input:
        images=measure_input_folder,
        models="results/models",
    output:
        out=report(directory("results/measure"), patterns=["{name}_overlay.png"], caption="../report/measure.rst",
                   category="Measurement of new radiographs"),
    params:
        anterior_side=config["measure"]["anterior_side"],
        batch_size=config["segmentation"]["batch_size"],
    threads: 2
    resources:
        gpu=1,
    log:
        "logs/measure/measure.log",
    benchmark:
        "benchmarks/measure/measure.tsv"
    conda:
        ENV
    script:
        "../scripts/measure.py"
