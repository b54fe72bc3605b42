"""Rule cohort_report: thin adapter over vcmeasure.cohort_report.cohort_report (issue 3)."""

from vcmeasure.cohort_report import cohort_report
from vcmeasure.smk import rule_context

with rule_context(snakemake):  # noqa: F821 - injected by Snakemake
    cohort_report(snakemake.input[0], snakemake.output.figure, snakemake.output.table,  # noqa: F821
                  clip_limit=snakemake.params.clip_limit, tile_grid=snakemake.params.tile_grid)  # noqa: F821
