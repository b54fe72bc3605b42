"""Rule evaluate_segmentation: per-image metrics and Table 1 (vcmeasure.segmentation.evaluate)."""

from vcmeasure.segmentation import evaluate
from vcmeasure.smk import rule_context

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_context(smk):
    evaluate(list(smk.params.archs), list(smk.input.masks), smk.input.truth, smk.input.split,
             list(smk.output.per_image), smk.output.table, smk.output.md)
