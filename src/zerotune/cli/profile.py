"""`zerotune profile`: where a training step spends its time (tune/profile.py)."""

from __future__ import annotations


def cmd_profile(args) -> int:
    from ..tune.profile import format_result, profile

    print(format_result(profile(args.target, args.steps, list(args.set or []))))
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("profile", help="profile a few training steps of a recipe or a run")
    p.add_argument("target", nargs="?", metavar="RECIPE|RUN",
                   help="a recipe (default: built-in digits CNN) or a run directory (writes RUN/profile/)")
    p.add_argument("--steps", type=int, default=5, help="measured steps, after 2 warm-up steps (default 5)")
    p.add_argument("--set", action="append", metavar="GROUP.FIELD=VALUE", help="override a config value (repeatable)")
    p.set_defaults(func=cmd_profile)
