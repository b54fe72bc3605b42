"""`vcmeasure bench`: run the benchmark harness (vcmeasure.benchmark) and write docs/performance.md."""

from __future__ import annotations

NAME = "bench"
HELP = "run the benchmarks; write results/bench/*.json and docs/performance.md"


def add_arguments(parser) -> None:
    from ..benchmark import ITEMS

    parser.add_argument("items", nargs="*", choices=[[], *ITEMS], metavar="ITEM",
                        help=f"benchmarks to run (default: all of {', '.join(ITEMS)})")
    parser.add_argument("--out", default="results/bench", help="folder for the JSON results")
    parser.add_argument("--page", default="docs/performance.md", help="the performance page to write")
    parser.add_argument("--backend", choices=["tensorflow", "jax", "torch"], default=None,
                        help="Keras backend for the model benchmarks (that framework must be installed)")


def run(args) -> int:
    from ..benchmark import run_all

    run_all(args.items or None, args.out, args.page, args.backend)
    return 0
