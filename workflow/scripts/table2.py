"""Rule table2: Table 2 against value_reader and value_true (vcmeasure.stats.write_table2)."""

from vcmeasure.smk import rule_context
from vcmeasure.stats import write_table2

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_context(smk):
    write_table2(
        list(smk.input.predictions),
        f"{smk.input.dataset}/measurements.csv",
        list(smk.params.methods),
        smk.output.csv,
        smk.output.md,
        smk.output.true_csv,
        smk.output.true_md,
        n_resamples=smk.params.bootstrap,
        seed=smk.params.seed,
    )
