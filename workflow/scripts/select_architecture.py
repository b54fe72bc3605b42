"""Checkpoint select_architecture: best mean DSC of Table 1 (vcmeasure.segmentation.select_architecture)."""

from vcmeasure.segmentation import select_architecture
from vcmeasure.smk import rule_context

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_context(smk):
    select_architecture(smk.input.table, list(smk.params.archs), smk.output.selected)
