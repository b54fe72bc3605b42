"""``vcmeasure import {aasce,buu-lspine,folder} SRC DEST``: a real dataset into the canonical format (DESIGN §3).

Exit status 0 when every file was imported, 1 when any was skipped (the dataset and ``DEST/import_skipped.csv``
are written all the same) or on a user error. Source names go only to the private mapping file.
"""

from __future__ import annotations

import sys

from ..importers import SKIPPED_FILE, SOURCES, import_dataset

NAME = "import"
HELP = "import a real dataset (AASCE, BUU-LSPINE, images + masks folder; DICOM too) as a canonical dataset"


def add_arguments(parser) -> None:
    parser.add_argument("source", choices=SOURCES, help="source format")
    parser.add_argument("src", help="source folder (as downloaded)")
    parser.add_argument("dest", help="canonical dataset folder to write, e.g. data/raw/<name>")
    parser.add_argument("--salt", default=None,
                        help="salt for the subject/image id hashes (default: $VCMEASURE_SALT; one is required)")
    parser.add_argument("--mapping", default=None,
                        help="private CSV mapping ids to source names (default .private/<DEST name>_mapping.csv; "
                             "must lie outside DEST and outside tracked paths)")
    parser.add_argument("--keep-names", action="store_true",
                        help="image ids from sanitised source names instead of hashes (only for names that carry "
                             "no patient data)")


def run(args) -> int:
    report = import_dataset(args.source, args.src, args.dest, salt=args.salt, mapping=args.mapping,
                            keep_names=args.keep_names)
    if report.skipped:
        print(f"vcmeasure import: {len(report.skipped)} file(s) skipped; see {report.dest / SKIPPED_FILE}",
              file=sys.stderr)
        return 1
    return 0
