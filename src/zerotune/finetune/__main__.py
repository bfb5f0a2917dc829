"""`python -m zerotune.finetune ...`: the `zerotune finetune` subcommand on its own."""

import argparse
import sys

from ..errors import UserError
from .cli import add_parser


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zerotune.finetune")
    sub = parser.add_subparsers(dest="command")
    add_parser(sub)
    args = parser.parse_args(["finetune", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.func(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
