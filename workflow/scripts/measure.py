"""Rule measure: VC of every radiograph in config measure.input (vcmeasure.measure.measure_folder)."""

from vcmeasure.gpu import claim_gpu
from vcmeasure.smk import rule_context

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_context(smk):
    claim_gpu()  # sets CUDA_VISIBLE_DEVICES before keras loads (CPU when there is no GPU)
    from vcmeasure.measure import measure_folder

    measure_folder(smk.input.images, smk.input.models, smk.output.out, anterior_side=smk.params.anterior_side,
                   batch_size=smk.params.batch_size, threads=smk.threads)
