"""Rule predict_regression: claim a GPU slot before Keras loads, then vcmeasure.regression.predict."""

from vcmeasure.gpu import claim_gpu
from vcmeasure.smk import rule_context

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_context(smk):
    claim_gpu()  # sets CUDA_VISIBLE_DEVICES: must precede every keras / tensorflow import
    from vcmeasure.regression import predict

    predict(smk.input.windows, smk.input.index, smk.input.model, smk.output.predictions,
            model_name=smk.wildcards.model, batch_size=smk.params.batch_size, threads=smk.threads)
