"""Thin adapter: rule import_dataset -> vcmeasure.importers.run_import (issue 10; DESIGN §3).

The salt comes from config data.salt (else $VCMEASURE_SALT, read by the library), not from params, so it is
not written to .snakemake/metadata.
"""

from vcmeasure.importers import run_import
from vcmeasure.smk import rule_context

with rule_context(snakemake):  # noqa: F821 - injected by Snakemake
    run_import(snakemake.params.source, snakemake.input.source, snakemake.output.dataset,  # noqa: F821
               salt=snakemake.config["data"].get("salt") or None, mapping=snakemake.params.mapping,  # noqa: F821
               allow_skipped=snakemake.params.allow_skipped)  # noqa: F821
