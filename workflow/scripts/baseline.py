"""Rule baseline: image-processing VC per window (vcmeasure.baseline.baseline_predictions; paper Fig. 5)."""

from vcmeasure.baseline import baseline_predictions
from vcmeasure.smk import rule_context

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_context(smk):
    baseline_predictions(smk.input.index, smk.input.masks, smk.output.predictions)
