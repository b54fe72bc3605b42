# vcmeasure: vertebral body compression on lateral spine radiographs (Seo et al., Sci Rep 2021).
#   snakemake --cores all --resources gpu=4                              paper scale (config/config.yaml)
#   snakemake --cores all --configfile config/quick.yaml --resources gpu=4   CPU demo (make demo)
import os

from snakemake.utils import min_version

min_version("9.0")


# Absolute, so that `--directory` runs (tests, cluster) still read the repository's defaults.
configfile: os.path.join(workflow.basedir, "config", "config.yaml")


# Front page of `snakemake --report report.html` (captions of each table / figure: workflow/report/*.rst).
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/cohort.smk"
include: "workflow/rules/import.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/split.smk"
include: "workflow/rules/segmentation.smk"
include: "workflow/rules/triplets.smk"
include: "workflow/rules/baseline.smk"
include: "workflow/rules/regression.smk"
include: "workflow/rules/stats.smk"
include: "workflow/rules/measure.smk"


# Only gathers targets: never submitted to a cluster.
localrules:
    all,


rule all:
    input:
        all_targets(),
    default_target: True
