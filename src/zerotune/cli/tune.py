"""`zerotune lr-find`: flags -> config -> `tune.lr_find`; the suggestion and the command to use it printed."""

from __future__ import annotations

import shlex


def cmd_lr_find(args) -> int:
    from ..config import load_config
    from ..tune.lr_find import check_range, lr_find

    check_range(args.start, args.end, args.steps)  # before the recipe and data are loaded
    config = load_config(args.recipe, list(args.set or []))
    result = lr_find(config, start=args.start, end=args.end, steps=args.steps, runs_dir=args.runs_dir,
                     name=args.name)
    ended = "stopped when the loss blew up" if result.stopped_early else f"{len(result.lrs)} steps"
    print(f"lr-find: {result.run_dir} ({ended}, curve in lr_find.png)")
    print(f"smoothed loss lowest at lr {result.min_loss_lr:.3g}; steepest descent at {result.steepest_lr:.3g}")
    print(f"suggested learning rate: {result.suggestion:.3g} (the lower of the steepest descent and minimum/10)")
    recipe = f" {shlex.quote(args.recipe)}" if args.recipe else ""
    sets = "".join(f" --set {shlex.quote(s)}" for s in (args.set or []) if not s.startswith("optim.lr="))
    print(f"zerotune train{recipe}{sets} --set optim.lr={result.suggestion:.3g}")
    return 0


def add_parser(subparsers) -> None:
    """Register `lr-find` on the CLI's subparsers."""
    p = subparsers.add_parser("lr-find", help="learning-rate range test: sweep the rate, suggest one")
    p.add_argument("recipe", nargs="?", help="TOML or YAML recipe (default: built-in digits CNN)")
    p.add_argument("--set", action="append", metavar="GROUP.FIELD=VALUE", help="override a config value (repeatable)")
    p.add_argument("--start", type=float, default=1e-7, help="first learning rate of the sweep (default 1e-7)")
    p.add_argument("--end", type=float, default=10.0, help="last learning rate of the sweep (default 10)")
    p.add_argument("--steps", type=int, default=100, help="optimizer steps, one rate each (default 100)")
    p.add_argument("--name", help="name of the test's run directory (default lr-find-<data>-<model>-<time>)")
    p.add_argument("--runs-dir", help="parent directory of that run directory (default log.dir)")
    p.set_defaults(func=cmd_lr_find)
