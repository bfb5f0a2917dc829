"""`zerotune doctor RUN [--json]`: what is wrong with a run and what to change (doctor/)."""

from __future__ import annotations


def cmd_doctor(args) -> int:
    from ..doctor import diagnose, format_text, to_json

    findings = diagnose(args.run)
    print(to_json(findings) if args.json else format_text(findings, args.run))
    return 0


def add_parser(subparsers) -> None:
    """Register `doctor` on the CLI's subparsers."""
    p = subparsers.add_parser("doctor", help="read a run's curves: findings, most severe first, with fixes")
    p.add_argument("run", metavar="RUN", help="a run directory, finished or still training")
    p.add_argument("--json", action="store_true",
                   help='print {"findings": [{"id", "severity", "message", "evidence", "fixes"}]}')
    p.set_defaults(func=cmd_doctor)
