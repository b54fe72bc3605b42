"""Rule `preprocess`: thin adapter around vcmeasure.preprocess.preprocess_dataset (DESIGN §5)."""

from pathlib import Path

from vcmeasure.preprocess import preprocess_dataset
from vcmeasure.smk import rule_context

with rule_context(snakemake):  # noqa: F821 - injected by Snakemake
    preprocess_dataset(
        snakemake.input.dataset,  # noqa: F821
        Path(snakemake.output.transforms).parent,  # noqa: F821 - the folder holding all four outputs
        size=snakemake.params.size,  # noqa: F821
        clip_limit=snakemake.params.clip_limit,  # noqa: F821
        tile_grid=snakemake.params.tile_grid,  # noqa: F821
        threads=snakemake.threads,  # noqa: F821
    )
