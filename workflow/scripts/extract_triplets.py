"""Rule extract_triplets: three-vertebra windows of one mask source (vcmeasure.triplets.extract_triplets)."""

import os

from vcmeasure.smk import rule_context
from vcmeasure.triplets import extract_triplets

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_context(smk):
    measurements = os.path.join(smk.input.dataset, "measurements.csv")
    extract_triplets(smk.input.masks, smk.input.gt_masks, smk.input.vertebrae, measurements, smk.input.split,
                     smk.output.windows, smk.output.index, smk.output.rejections, smk.output.summary_md,
                     smk.output.summary_json, window_size=smk.params.window_size,
                     fracture_threshold=smk.params.fracture_threshold, source=smk.wildcards.source)
