"""Rule predict_segmentation: label maps for every preprocessed image (vcmeasure.segmentation.predict)."""

from vcmeasure.gpu import claim_gpu
from vcmeasure.smk import rule_context

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_context(smk):
    claim_gpu()  # sets CUDA_VISIBLE_DEVICES before keras loads (CPU when there is no GPU)
    from vcmeasure.segmentation import predict

    predict(smk.input.model, smk.input.images, smk.output.masks, threshold=smk.params.threshold,
            min_component_px=smk.params.min_component_px, batch_size=smk.params.batch_size, threads=smk.threads)
