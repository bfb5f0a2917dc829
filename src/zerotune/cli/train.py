"""`zerotune train` and `zerotune eval`: flags -> config -> `pipeline.train`; results printed."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import UserError
from .common import add_run_flags, resume_flags_as_overrides, run_flags_as_overrides
from .distributed import add_distributed_flags, wants_distributed


def cmd_train(args) -> int:
    from ..config import check_switched_groups, load_config
    from ..pipeline.train import train
    from ..doctor.after_training import print_serious

    overrides = list(args.set or [])
    if args.resume:
        if args.recipe:
            raise UserError("give either a recipe or --resume RUN, not both")
        overrides += resume_flags_as_overrides(args)
    else:
        overrides += run_flags_as_overrides(args)
        config = load_config(args.recipe, overrides)
        check_switched_groups(config, overrides)
    board = None
    if args.board:
        from ..track.board import start_board

        logdir = Path(args.resume).parent if args.resume else config.log.dir
        board = start_board(logdir, port=args.port)
        print(f"TensorBoard: {board.url}", flush=True)
    try:
        if wants_distributed(args):  # several processes: a launcher, or one of the workers
            from .distributed import run_distributed

            return run_distributed(args, overrides, None if args.resume else config, print_summary)
        result = train(None, resume=args.resume, resume_overrides=overrides) if args.resume else train(config)
        print_summary(result.run_dir, result.metrics)
        print_serious(result.findings, result.run_dir)
        if board is not None and sys.stdin.isatty():
            print(f"training done; TensorBoard stays at {board.url} until Ctrl-C", flush=True)
            board.wait()
    finally:
        if board is not None:
            board.stop()
    return 0


def print_summary(run_dir, metrics: dict) -> None:
    """The run directory and its headline metrics on the test split (val where there is no test)."""
    split = "test" if metrics["test"].get("n") else "val"  # a corpus may have no test part
    result = metrics[split]
    if "perplexity" in result:
        keys = ("loss", "perplexity", "bits_per_token")
    elif "accuracy" in result:
        keys = ("accuracy", "f1_macro", "roc_auc")
    elif "preference_accuracy" in result:
        keys = ("preference_accuracy", "loss", "rewards/margin")
    else:
        keys = ("r2", "mse", "mae")
    shown = "  ".join(f"{k} {result[k]:.4f}" for k in keys if result.get(k) is not None)
    stop = metrics["training"]["stop_reason"]
    print(f"run: {run_dir}\n{split} ({metrics['checkpoint']} checkpoint): {shown}" + (f"\n{stop}" if stop else ""))


def cmd_eval(args) -> int:
    from ..pipeline.train import dumps_metrics, evaluate

    m = evaluate(args.run, split=args.split, checkpoint=args.checkpoint, tta=args.tta, prompts=args.prompts,
                 answers=args.answers, force=args.force)
    if args.json:
        print(dumps_metrics(m))
        return 0
    from .report_text import print_eval

    print_eval(m)
    if "answers" in m:
        print(f"answers: {m['answers']} ({m['n']} records: prompt, reference, answer, match)")
    return 0


def add_parsers(subparsers) -> None:
    """Register `train` and `eval` on the CLI's subparsers."""
    t = subparsers.add_parser("train", help="train a model from a recipe (or the defaults)")
    t.add_argument("recipe", nargs="?", help="TOML or YAML recipe (default: built-in digits CNN)")
    add_run_flags(t, resume_help="continue the run in this directory")
    t.add_argument("--board", action="store_true", help="start TensorBoard on the runs directory for a live view")
    t.add_argument("--port", type=int, default=6006, help="TensorBoard port for --board (0: any free port)")
    add_distributed_flags(t)
    t.set_defaults(func=cmd_train)

    e = subparsers.add_parser("eval", help="print a run's metrics on a split")
    e.add_argument("run", help="run directory")
    e.add_argument("--split", default="test", choices=["train", "val", "test"])
    e.add_argument("--checkpoint", default="best", choices=["best", "last"])
    e.add_argument("--json", action="store_true", help="print JSON")
    e.add_argument("--tta", action="store_true",
                   help="also test-time augmentation: softmax averaged over fixed views of each image (image classifiers)")
    e.add_argument("--prompts", metavar="FILE",
                   help="language models: score the prompt/response records of this JSONL file instead of a split "
                        "(exact match of greedy answers in the run's chat format), e.g. a corpus run before tuning")
    e.add_argument("--answers", nargs="?", const="", metavar="FILE",
                   help="write every prompt, reference, answer and match as JSONL "
                        "(default file: RUN/eval/answers-<split>.jsonl)")
    e.add_argument("--force", action="store_true", help="overwrite the --answers file if it exists")
    e.set_defaults(func=cmd_eval)
