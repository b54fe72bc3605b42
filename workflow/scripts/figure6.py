"""Rule figure6: paper Fig. 6 for three test images (vcmeasure.segmentation.figure6)."""

from vcmeasure.segmentation import figure6
from vcmeasure.smk import rule_context

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_context(smk):
    figure6(list(smk.params.archs), smk.input.dataset, smk.input.images, list(smk.input.masks), smk.input.truth,
            smk.input.split, smk.output.png)
