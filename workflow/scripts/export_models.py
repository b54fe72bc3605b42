"""Rule export_models: the selected segmentation model, MRDN and manifest.json (vcmeasure.measure.export_models)."""

import os

from vcmeasure.smk import rule_context

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_context(smk):
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")  # only reads the models: leave the GPUs to training
    from vcmeasure.measure import export_models

    export_models(smk.input.selected, smk.input.segmentation, smk.input.regression, smk.output.models,
                  **dict(smk.params.items()))
