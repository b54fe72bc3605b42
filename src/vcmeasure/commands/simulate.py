"""``vcmeasure simulate DEST``: write a synthetic lateral spine cohort (issue 3; DESIGN §3 format)."""

from __future__ import annotations

NAME = "simulate"
HELP = "generate a synthetic cohort of lateral spine radiographs with exact ground truth"


def add_arguments(parser) -> None:
    from ..synth import PRESETS

    parser.add_argument("dest", metavar="DEST", help="dataset folder to write (replaced atomically)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="test", help="cohort size and resolution")
    parser.add_argument("--seed", type=int, default=42, help="root seed (same seed, byte-identical files)")
    parser.add_argument("--n-images", type=int, default=None, help="override the preset's image count")
    parser.add_argument("--reader-noise-sd", type=float, default=1.0, help="SD of the simulated reader (VC points)")
    parser.add_argument("--threads", type=int, default=1, help="worker processes")


def run(args) -> int:
    from ..synth import simulate_cohort

    dest = simulate_cohort(args.dest, preset=args.preset, n_images=args.n_images, seed=args.seed,
                           reader_noise_sd=args.reader_noise_sd, threads=args.threads)
    print(dest)
    return 0
