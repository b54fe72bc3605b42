"""``vcmeasure validate-dataset PATH``: check a dataset against the canonical contract (DESIGN §3; issue 3)."""

from __future__ import annotations

NAME = "validate-dataset"
HELP = "check a dataset folder against the canonical format; print every problem, exit 1 if any"


def add_arguments(parser) -> None:
    parser.add_argument("path", metavar="PATH", help="dataset folder (data/raw/<name>)")


def run(args) -> int:
    from ..validate import validate_dataset

    problems = validate_dataset(args.path)
    for line in problems:
        print(line)
    if problems:
        print(f"{args.path}: {len(problems)} problem(s)")
        return 1
    print(f"{args.path}: valid")
    return 0
