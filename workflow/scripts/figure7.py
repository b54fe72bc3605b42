"""Rule figure7: results/figures/fig7_agreement.png (vcmeasure.agreement_plots.write_figure7)."""

from vcmeasure.agreement_plots import write_figure7
from vcmeasure.smk import rule_context

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_context(smk):
    write_figure7(
        list(smk.input.predictions), f"{smk.input.dataset}/measurements.csv", list(smk.params.methods), smk.output.png
    )
