"""Rule summary: results/summary.md and results/metrics.json (vcmeasure.summary.write_summary)."""

from vcmeasure.smk import rule_context
from vcmeasure.summary import write_summary

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_context(smk):
    inp = smk.input
    write_summary(
        inp.table2,
        inp.table2_true,
        inp.agreement,
        inp.table1,
        inp.selected,
        inp.split,
        inp.triplets,
        f"{inp.dataset}/images.csv",
        f"{inp.dataset}/measurements.csv",
        f"{inp.dataset}/vertebrae.csv",
        dict(smk.params.config),
        smk.output.md,
        smk.output.metrics,
    )
