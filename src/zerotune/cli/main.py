"""The `zerotune` command: a table of subcommands, each a thin call into the Python API.

Each command family lives in its own module of this package and registers its parsers; this module
only lists them. Nothing imports it but the entry points (`zerotune`, `python -m zerotune`).
"""

from __future__ import annotations

import argparse
import sys

from . import catalog, cv, distill, doctor, export, finetune, generate, profile, scratch, serve, summary, track, train, tune
from .common import root_parser, run_parser

# In the order `zerotune --help` lists them.
COMMANDS = (
    train.add_parsers,  # train, eval
    generate.add_parser,
    catalog.add_parsers,  # models, datasets
    summary.add_parser,
    finetune.add_parser,
    distill.add_parser,
    tune.add_parser,  # lr-find
    cv.add_parser,
    track.add_parsers,  # board, runs, report
    profile.add_parser,
    doctor.add_parser,
    export.add_parser,
    serve.add_parser,
    scratch.add_parser,
)


def build_parser() -> argparse.ArgumentParser:
    """The `zerotune` parser with every subcommand."""
    parser, subparsers = root_parser()
    for add in COMMANDS:
        add(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``zerotune ARGS``; returns the exit code."""
    return run_parser(build_parser(), sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
