"""CLI subcommands, one module each (see :mod:`vcmeasure.cli`)."""
