"""Identifiers that keep patient data out of a dataset (issue 10; DESIGN §3 ``image_id``/``subject_id``).

- Subject ids are salted SHA-256 hashes of the source subject (``sha256(salt + subject)``): stable across
  imports with the same salt, not reversible without it, and never the source name itself.
- Image ids are salted hashes of the source file's relative name by default (source names can carry dates,
  sex and age, e.g. BUU-LSPINE ``0001-F-037Y1``); ``keep_names`` gives sanitised names instead, for public
  data whose names are known to carry nothing about a person.
- The salt comes from the caller (``--salt``, config ``data.salt``) or the environment (``VCMEASURE_SALT``).
"""

from __future__ import annotations

import hashlib
import os
import re

from ..errors import ConfigError

SALT_ENV = "VCMEASURE_SALT"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def resolve_salt(salt: str | None = None) -> str:
    """The salt given, else ``$VCMEASURE_SALT``; none at all is a configuration error (hashes would be guessable)."""
    value = salt or os.environ.get(SALT_ENV, "")
    if not value:
        raise ConfigError(f"no salt for subject ids: pass --salt, set config data.salt or the environment "
                          f"variable {SALT_ENV}")
    return value


def subject_id(salt: str, source_subject: str) -> str:
    """Salted hash of a source subject: ``s`` + 16 hex digits of sha256(salt + subject)."""
    return "s" + hashlib.sha256((salt + source_subject).encode("utf-8")).hexdigest()[:16]


def hashed_image_id(salt: str, source_name: str) -> str:
    """Salted hash of a source file name: ``i`` + 16 hex digits (a separate namespace from subjects)."""
    return "i" + hashlib.sha256((salt + "\0image\0" + source_name).encode("utf-8")).hexdigest()[:16]


def sanitise_name(name: str) -> str:
    """A source name made into a valid image id: runs of other characters become one ``_``."""
    out = _UNSAFE.sub("_", name).strip("_")
    return out or "image"


def assign_image_ids(names: list[str], salt: str, keep_names: bool = False) -> dict[str, str]:
    """Image id per source name, unique and matching ``[A-Za-z0-9_-]+``; sanitised clashes get ``-2``, ``-3``..."""
    ids: dict[str, str] = {}
    used: set[str] = set()
    for name in sorted(names):
        base = sanitise_name(name) if keep_names else hashed_image_id(salt, name)
        candidate, k = base, 1
        while candidate in used:
            k += 1
            candidate = f"{base}-{k}"
        used.add(candidate)
        ids[name] = candidate
    return ids
