"""Rule agreement: results/stats/agreement.json (vcmeasure.stats.write_agreement)."""

from vcmeasure.smk import rule_context
from vcmeasure.stats import write_agreement

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_context(smk):
    write_agreement(
        list(smk.input.predictions),
        f"{smk.input.dataset}/measurements.csv",
        list(smk.params.methods),
        smk.output.json,
        out_points=smk.output.points,
    )
