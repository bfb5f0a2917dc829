"""Subcommand parsers whose arguments are added only when their command is chosen.

`zerotune --help` lists every command from its name and help line alone, so a sub-CLI whose
arguments need heavy modules (their defaults and choices live beside torch or NumPy code) defers
adding them: `zerotune --help` and `--version` then import none of those modules.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable


def defer_arguments(parser: argparse.ArgumentParser, add: Callable[[argparse.ArgumentParser], None]) -> None:
    """Call ``add(parser)`` the first time ``parser`` parses, before it parses.

    Args:
        parser: a subcommand's parser, already holding its help and description.
        add: adds the subcommand's arguments (and sub-subcommands, defaults) to it.
    """
    parse = parser.parse_known_args

    def parse_known_args(args=None, namespace=None):
        del parser.parse_known_args  # back to the class's method: add only once
        add(parser)
        return parse(args, namespace)

    parser.parse_known_args = parse_known_args
