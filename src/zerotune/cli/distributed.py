"""`zerotune train|finetune --nproc N` (the launcher), and the same commands inside a torchrun worker."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..errors import UserError, disk_error


def add_distributed_flags(p) -> None:
    """--nproc and --max-restarts, for the commands that train."""
    p.add_argument("--nproc", type=int, metavar="N",
                   help="train in N processes on this machine (DDP through torch's elastic agent, as torchrun)")
    p.add_argument("--max-restarts", type=int, default=0, metavar="K",
                   help="with --nproc: restart the workers from the last checkpoint up to K times after a failure")


def wants_distributed(args) -> bool:
    """Whether this command launches workers (``--nproc``) or is one of them; --max-restarts needs --nproc."""
    from ..distributed.launch import in_worker

    if args.max_restarts and args.nproc is None:
        raise UserError("--max-restarts applies with --nproc N (under torchrun, give it to torchrun)")
    return args.nproc is not None or in_worker()


def run_distributed(args, overrides: list[str], config, print_summary, command: str = "train") -> int:
    """Launch the workers (``--nproc``), or, in a worker, train as one rank of the job.

    Args:
        args: the parsed arguments of `command`.
        overrides: the ``--set`` values, and for a new run the run flags (and a fine-tune's source
            and strategy) as overrides.
        config: the new run's Config (None when resuming).
        print_summary: prints a finished run's directory and metrics (rank 0 only).
        command: the zerotune command the workers run, ``train`` or ``finetune``.
    """
    from ..distributed.launch import in_worker

    if in_worker():
        if args.nproc is not None:
            raise UserError("--nproc starts its own workers; under torchrun leave it out")
        return _worker(args, overrides, config, print_summary)
    return _launcher(args, overrides, config, command)


def _launcher(args, overrides: list[str], config, command: str) -> int:
    from ..distributed.env import check_launchable
    from ..distributed.launch import WorkerFailed, check_nproc, launch
    from ..runload.load import read_run_config

    check_nproc(args.nproc)
    if args.max_restarts < 0:
        raise UserError(f"--max-restarts {args.max_restarts}: must be 0 or more")
    check_launchable(config if config is not None else read_run_config(Path(args.resume)))
    run_dir = Path(args.resume) if args.resume else None
    if config is not None:  # named here, so that a restarted worker, and the message of a failure, know it
        name = config.log.name or _fresh_name(config)
        overrides = [*overrides, f"log.name={name}"] if config.log.name is None else overrides
        run_dir = Path(config.log.dir) / name
    worker = (["--debug"] if args.debug else []) + [command] + ([args.recipe] if args.recipe else [])
    for o in overrides:
        worker += ["--set", o]
    if args.resume:
        worker += ["--resume", str(args.resume)]
    try:
        launch(args.nproc, worker, args.max_restarts, args.debug)
    except WorkerFailed as e:
        from ..run.files import RunDir
        from ..train.checkpoint import find_checkpoint

        saved = find_checkpoint(RunDir(run_dir).checkpoint("last"))
        hint = f"; continue with: zerotune {command} --nproc {args.nproc} --resume {run_dir}" if saved else ""
        print(f"error: {e}{hint}", file=sys.stderr)
        return 1
    return 0


def _fresh_name(config) -> str:
    """A run name not taken yet in log.dir, chosen before the workers start."""
    from ..pipeline.train import default_run_prefix
    from ..run.files import new_run_name

    base = new_run_name(default_run_prefix(config))
    name, n = base, 1
    while (Path(config.log.dir) / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def _worker(args, overrides: list[str], config, print_summary) -> int:
    """One rank: train (or resume, also after the agent restarted the job), its bad input reported once."""
    from ..distributed.launch import report_worker_error, under_launcher
    from ..pipeline.train import train

    resume, resume_overrides = args.resume, overrides
    restarted = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0
    if restarted and resume is None and config.log.name and (Path(config.log.dir) / config.log.name).is_dir():
        resume, resume_overrides = Path(config.log.dir) / config.log.name, []  # continue the attempt that failed
    try:
        result = train(None, resume=resume, resume_overrides=resume_overrides) if resume else train(config)
    except UserError as e:
        if args.debug:
            raise
        if report_worker_error(str(e)):
            print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        if not under_launcher():
            raise
        raise SystemExit(130) from None  # the launcher says it, once
    except Exception as e:  # often a lost connection to a rank that died: the launcher names that one
        if args.debug or not under_launcher():
            raise
        if isinstance(e, OSError) and (full := disk_error(e)) is not None:  # a full disk: bad input, said once
            if report_worker_error(str(full)):
                print(f"error: {full}", file=sys.stderr)
            raise SystemExit(2) from None
        report_worker_error(f"internal error {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        raise SystemExit(1) from None
    if result.metrics:  # rank 0
        print_summary(result.run_dir, result.metrics)
    return 0
