"""Rule train_segmentation: claim a GPU slot before Keras loads, then vcmeasure.segmentation.train."""

from vcmeasure.gpu import claim_gpu
from vcmeasure.smk import rule_context

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_context(smk):
    claim_gpu()  # sets CUDA_VISIBLE_DEVICES: must precede every keras / tensorflow import
    from vcmeasure.segmentation import train

    p = smk.params
    train(smk.wildcards.arch, smk.input.images, smk.input.masks, smk.input.split, smk.output.model,
          smk.output.history, smk.output.curve, checkpoint_dir=p.checkpoint, base_filters=p.base_filters,
          depth=p.depth, batch_size=p.batch_size, epochs=p.epochs, learning_rate=p.learning_rate,
          augment=p.augment, seed=p.seed, threads=smk.threads)
