"""Errors that reach the user as one clear line (the CLI and workflow scripts print them, exit non-zero)."""


class VCMeasureError(Exception):
    """A user-facing error: bad input file, bad config key, unusable dataset. The message names the culprit."""


class InputError(VCMeasureError):
    """An input file that cannot be read or does not follow the expected format."""


class ConfigError(VCMeasureError):
    """A configuration key with a wrong name, type or value."""
