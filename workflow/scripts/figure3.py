"""Rule figure3: division of a label map into three-body windows (vcmeasure.triplets.figure3; paper Fig. 3)."""

from vcmeasure.smk import rule_context
from vcmeasure.triplets import figure3

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_context(smk):
    figure3(smk.input.masks, smk.input.index, smk.input.windows, smk.input.rejections, smk.output.png)
