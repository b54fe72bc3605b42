"""``vcmeasure measure IMAGE... --models DIR --out DIR``: VC of new radiographs (issue 12; :mod:`vcmeasure.measure`).

Writes ``DIR/<stem>.json``, ``DIR/<stem>_overlay.png`` per image and ``DIR/measurements.csv`` for all. A file
that cannot be read gets one line on stderr; the others are still measured and the exit status is 1.
"""

from __future__ import annotations

import sys

NAME = "measure"
HELP = "measure vertebral compression (VC, Genant grade, heights) on new radiographs with trained models"


def add_arguments(parser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE",
                        help="PNG, JPEG, TIFF or DICOM files, or folders of them")
    parser.add_argument("--models", required=True, metavar="DIR",
                        help="model bundle written by rule export_models (e.g. results/models)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    parser.add_argument("--anterior-side", choices=["left", "right"], default=None,
                        help="side the patient faces where the file does not say (DICOM PatientOrientation "
                             "wins); default left")
    parser.add_argument("--pixel-spacing-mm", type=float, default=None,
                        help="pixel spacing for files without one (DICOM brings its own): heights in mm")
    parser.add_argument("--batch-size", type=int, default=8, help="images per network call")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for the networks")


def run(args) -> int:
    from ..errors import ConfigError
    from ..measure import load_models, measure_files

    if args.pixel_spacing_mm is not None and not args.pixel_spacing_mm > 0:
        raise ConfigError(f"--pixel-spacing-mm: must be > 0, got {args.pixel_spacing_mm}")
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size: must be >= 1, got {args.batch_size}")
    bundle = load_models(args.models, threads=args.threads)

    def report(line: str) -> None:
        print(f"vcmeasure measure: error: {line}", file=sys.stderr, flush=True)

    results, errors = measure_files(args.images, args.out, bundle, anterior_side=args.anterior_side,
                                    pixel_spacing_mm=args.pixel_spacing_mm, batch_size=args.batch_size,
                                    on_error=report)
    for res in results:
        measured = sum(lv.status == "measured" for lv in res.levels)
        detail = f"{measured} level(s)" if res.status == "measured" else res.reason
        print(f"{res.file}: {res.status.replace('_', ' ')} ({detail})")
    print(f"{args.out}/measurements.csv")
    return 1 if errors else 0
