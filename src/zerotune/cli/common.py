"""What every command shares: the root parser, the run flags, error handling and ``python -m`` entry.

Command modules import this one and the API packages; none imports `cli.main`, which only lists them.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import sys
from collections.abc import Callable

from ..errors import UserError, disk_error

AddParser = Callable[[argparse._SubParsersAction], object]


def root_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """The ``zerotune`` parser with its global flags, and the collection its commands are added to."""
    from .. import __version__

    p = argparse.ArgumentParser(prog="zerotune", description="Train, fine-tune, inspect and ship models; see it all in TensorBoard.")
    p.add_argument("--version", action="version", version=f"zerotune {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p, p.add_subparsers(dest="command", required=True, metavar="COMMAND")


def command_parser(add_parser: AddParser) -> argparse.ArgumentParser:
    """A ``zerotune`` parser that holds only the command ``add_parser`` registers."""
    parser, subparsers = root_parser()
    add_parser(subparsers)
    return parser


def add_run_flags(p: argparse.ArgumentParser, resume_help: str) -> None:
    """Add the flags of a command that starts or resumes a run (--set, --resume, --name, --runs-dir, ...)."""
    p.add_argument("--set", action="append", metavar="GROUP.FIELD=VALUE", help="override a config value (repeatable)")
    p.add_argument("--resume", metavar="RUN", help=resume_help)
    p.add_argument("--name", help="run name (log.name)")
    p.add_argument("--runs-dir", help="parent directory of runs (log.dir)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--test", metavar="FILE", help="text data: a file used whole as the test split (data.test_path)")


def run_flags_as_overrides(args) -> list[str]:
    """--name, --runs-dir, --no-progress and --test as the config overrides they stand for."""
    out = [f"data.test_path={json.dumps(args.test)}"] if args.test else []  # quoted: a path stays a string
    if args.name:
        out.append(f"log.name={args.name}")
    if args.runs_dir:
        out.append(f"log.dir={args.runs_dir}")
    if args.no_progress:
        out.append("log.progress=false")
    return out


def resume_flags_as_overrides(args) -> list[str]:
    """With --resume: --no-progress as its override; --name, --runs-dir and --test refused, not ignored.

    A resumed run keeps its directory and its data, so those three cannot apply to it.
    """
    for flag, value in (("--name", args.name), ("--runs-dir", args.runs_dir), ("--test", args.test)):
        if value:
            raise UserError(f"{flag} cannot be given with --resume: a resumed run keeps its directory and data "
                            f"(--set and --no-progress can be)")
    return ["log.progress=false"] if args.no_progress else []


def run_parser(parser: argparse.ArgumentParser, argv: list[str]) -> int:
    """Parse ``argv`` and run the chosen command; bad input is one line on stderr and exit code 2.

    Args:
        parser: a parser whose commands set ``func`` to a function of the parsed arguments.
        argv: the arguments, without the program name.

    Returns:
        The exit code: 0 done, 1 internal error, 2 bad input (a full or read-only disk too), 130 interrupted,
        141 (128 + SIGPIPE, as a shell reports `seq 100000 | head -1`) stdout closed by its reader.
    """
    debug = "--debug" in argv
    try:
        args = parser.parse_args(argv)
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a reader gone meets its BrokenPipeError here, not at the interpreter's exit
        return code
    except UserError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug, not bad input: say so in one line unless --debug
        if isinstance(e, BrokenPipeError) and _stdout_reader_gone():  # `| head -1`: not a bug either
            return _quiet_after_closed_stdout()
        if debug:
            raise
        if isinstance(e, OSError) and (full := disk_error(e)) is not None:  # a full or read-only disk is not a bug
            print(f"error: {full}", file=sys.stderr)
            return 2
        print(f"error: internal error {type(e).__name__}: {e} (run again with --debug for the traceback)", file=sys.stderr)
        return 1


def _stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it (`zerotune runs | head -1`): poll says POLLERR."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll on this platform, or no stdout
        return False


def _quiet_after_closed_stdout() -> int:
    """End as a command whose reader stopped listening ends: no message, exit status 128 + SIGPIPE.

    What is left in stdout's buffer goes to /dev/null, so that the interpreter's flush at exit raises
    no second BrokenPipeError (https://docs.python.org/3/library/signal.html#note-on-sigpipe).
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + signal.SIGPIPE


def run_subcommand(name: str, add_parser: AddParser, argv: list[str] | None = None) -> int:
    """``python -m zerotune.<name> ARGS`` behaves exactly as ``zerotune <name> ARGS``.

    Args:
        name: the command, as ``add_parser`` registers it.
        add_parser: registers the command on a sub-parser collection.
        argv: the arguments (default: ``sys.argv[1:]``); a leading ``name`` is dropped.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == [name]:
        argv = argv[1:]
    return run_parser(command_parser(add_parser), [name, *argv])
