"""`zerotune summary`: recipe or run -> `pipeline.summary.model_summary`; the table printed."""

from __future__ import annotations


def cmd_summary(args) -> int:
    from ..pipeline.summary import model_summary

    print(model_summary(args.target, list(args.set or [])).table())
    return 0


def add_parser(subparsers) -> None:
    """Register `summary` on the CLI's subparsers."""
    p = subparsers.add_parser("summary", help="table of layers: output shapes, parameters, multiply-accumulates")
    p.add_argument("target", nargs="?", help="TOML or YAML recipe, or a run directory (default: built-in digits CNN)")
    p.add_argument("--set", action="append", metavar="GROUP.FIELD=VALUE", help="override a recipe value (repeatable)")
    p.set_defaults(func=cmd_summary)
