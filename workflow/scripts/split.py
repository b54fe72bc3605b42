"""Rule `split`: thin adapter around vcmeasure.split.run_split (DESIGN §5 Split)."""

from vcmeasure.smk import rule_context
from vcmeasure.split import run_split

with rule_context(snakemake):  # noqa: F821 - injected by Snakemake
    run_split(
        snakemake.input.dataset,  # noqa: F821
        snakemake.output.split,  # noqa: F821
        snakemake.output.summary,  # noqa: F821
        **dict(snakemake.params.items()),  # noqa: F821
    )
