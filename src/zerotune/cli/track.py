"""Subcommands `board`, `runs` and `report`; each is a thin call into a plain function."""

from __future__ import annotations


def cmd_board(args) -> int:
    from ..track.board import board_command

    return board_command(args.logdir, port=args.port, host=args.host)


def cmd_runs(args) -> int:
    from ..track.runs_table import runs_command

    return runs_command(args.logdir, as_json=args.json)


def cmd_report(args) -> int:
    from ..doctor.report import write_report

    path = write_report(args.run, out=args.out, fmt=args.format)
    print(f"report: {path}")
    return 0


def add_parsers(subparsers) -> None:
    """Register `board`, `runs` and `report` on an argparse sub-parser collection."""
    b = subparsers.add_parser("board", help="serve runs in TensorBoard (the tensorboard package) on 127.0.0.1")
    b.add_argument("logdir", nargs="?", default="runs", help="directory of runs (default: runs)")
    b.add_argument("--port", type=int, default=6006, help="port (default: 6006; 0 picks a free one)")
    b.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    b.set_defaults(func=cmd_board)

    r = subparsers.add_parser("runs", help="table of runs: model, key hyperparameters, best val metric, duration")
    r.add_argument("logdir", nargs="?", default="runs", help="directory of runs (default: runs)")
    r.add_argument("--json", action="store_true", help="print JSON with every hyperparameter")
    r.set_defaults(func=cmd_runs)

    p = subparsers.add_parser("report", help="write an HTML (or Markdown) report of a run")
    p.add_argument("run", help="run directory")
    p.add_argument("--format", choices=["html", "md"], default="html", help="html: one self-contained file; "
                   "md: Markdown plus a folder of PNGs")
    p.add_argument("--out", help="output file (default: RUN/report.html or RUN/report.md)")
    p.set_defaults(func=cmd_report)
