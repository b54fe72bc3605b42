"""Rule train_regression: claim a GPU slot before Keras loads, then vcmeasure.regression.train."""

from vcmeasure.gpu import claim_gpu
from vcmeasure.smk import rule_context

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_context(smk):
    claim_gpu()  # sets CUDA_VISIBLE_DEVICES: must precede every keras / tensorflow import
    from vcmeasure.regression import train

    p = smk.params
    train(smk.input.windows, smk.input.index, smk.output.model, smk.output.history, smk.output.curve,
          model_name=smk.wildcards.model, filters=p.filters, batch_size=p.batch_size, epochs=p.epochs,
          learning_rate=p.learning_rate, seed=p.seed, checkpoint_dir=p.checkpoint, threads=smk.threads)
