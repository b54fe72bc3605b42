"""Rule simulate_cohort: thin adapter over vcmeasure.synth.simulate_cohort (issue 3)."""

from vcmeasure.smk import rule_context
from vcmeasure.synth import simulate_cohort

with rule_context(snakemake):  # noqa: F821 - injected by Snakemake
    p = snakemake.params  # noqa: F821
    simulate_cohort(snakemake.output[0], preset=p.preset, n_images=p.n_images, seed=p.seed,  # noqa: F821
                    reader_noise_sd=p.reader_noise_sd, threads=snakemake.threads)  # noqa: F821
