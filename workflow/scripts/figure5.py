"""Rule figure5: vertices, centres and the anterior/posterior division (vcmeasure.baseline.figure5; Fig. 5)."""

from vcmeasure.baseline import figure5
from vcmeasure.smk import rule_context

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_context(smk):
    figure5(smk.input.predictions, smk.input.index, smk.input.masks, smk.output.png)
