"""Importers of real datasets into the canonical dataset (issue 10; DESIGN §3).

``import_dataset(source, src, dest, ...)`` dispatches to :mod:`.aasce` (AP, measure ``ap_left_height_ratio``),
:mod:`.buu_lspine` (lateral, ``vc_anterior``) and :mod:`.folder` (images + label masks, ``vc_anterior``); all of
them write through :func:`.common.write_import`, which keeps patient data out (salted ids, private mapping)
and reports skipped files.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError, InputError
from . import aasce, buu_lspine, folder
from .common import SKIPPED_FILE, ImportReport, default_mapping_path, write_import

IMPORTERS = {aasce.SOURCE: aasce, buu_lspine.SOURCE: buu_lspine, folder.SOURCE: folder}
SOURCES = tuple(IMPORTERS)

__all__ = ["IMPORTERS", "SKIPPED_FILE", "SOURCES", "ImportReport", "default_mapping_path", "import_dataset",
           "run_import"]


def import_dataset(source: str, src: str | Path, dest: str | Path, *, salt: str | None = None,
                   mapping: str | Path | None = None, keep_names: bool = False) -> ImportReport:
    """Import ``src`` (a dataset in ``source`` format) into the canonical dataset folder ``dest``."""
    if source not in IMPORTERS:
        raise ConfigError(f"data.source: unknown importer {source!r} (one of {', '.join(SOURCES)})")
    src = Path(src)
    if not str(src) or not src.exists():
        raise InputError(f"{src}: source folder not found (config data.path)")
    module = IMPORTERS[source]
    entries, notes = module.collect(src)
    return write_import(entries, dest, source=source, measure=module.MEASURE, salt=salt, mapping=mapping,
                        keep_names=keep_names, notes=notes)


def run_import(source: str, src: str | Path, dest: str | Path, *, salt: str | None = None,
               mapping: str | Path | None = None, keep_names: bool = False, allow_skipped: bool = False) -> None:
    """Workflow entry: import, then fail (after writing the dataset and its skip report) if files were skipped."""
    report = import_dataset(source, src, dest, salt=salt, mapping=mapping, keep_names=keep_names)
    if report.skipped and not allow_skipped:
        raise InputError(f"{src}: {len(report.skipped)} file(s) skipped, reasons in the log and "
                         f"{Path(dest) / SKIPPED_FILE} (set data.allow_skipped: true to go on without them)")
