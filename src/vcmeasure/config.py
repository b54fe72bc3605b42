"""Configuration helpers: one-line messages for schema violations (bad config stops before any job)."""

from __future__ import annotations

import re


def describe_validation_error(err: Exception) -> str:
    """Turn a jsonschema / Snakemake validation error into one line naming the offending key."""
    cause = err
    while getattr(cause, "__cause__", None) is not None or getattr(cause, "__context__", None) is not None:
        nxt = cause.__cause__ or cause.__context__
        if nxt is cause:
            break
        cause = nxt
        if hasattr(cause, "absolute_path"):
            break
    text = str(cause)
    if hasattr(cause, "absolute_path"):
        path = ".".join(str(p) for p in cause.absolute_path) or "<top level>"
        message = cause.message
        unexpected = re.findall(r"'([^']+)' (?:was|were) unexpected", message)
        if unexpected:
            key = f"{path}.{unexpected[0]}" if path != "<top level>" else unexpected[0]
            return f"config error: unknown key '{key}'"
        return f"config error: key '{path}': {message}"
    first = text.strip().splitlines()[0] if text.strip() else repr(err)
    return f"config error: {first}"
