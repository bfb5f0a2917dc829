"""`zerotune lr-find` and `zerotune sweep`: flags -> config -> `tune/`; results printed."""

from __future__ import annotations

import shlex

from ..errors import UserError


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


def cmd_sweep(args) -> int:
    from ..tune.sweep import SweepOptions, run_sweep, start_sweep

    if args.resume:
        given = [flag for flag, v in (("RECIPE", args.recipe), ("--param", args.param), ("--set", args.set),
                                       ("--name", args.name), ("--runs-dir", args.runs_dir), ("--prune", args.prune),
                                       ("--sampler", args.sampler), ("--pruner", args.pruner)) if v]
        if given:
            raise UserError(f"--resume continues a sweep as it was planned; drop {', '.join(given)} "
                            f"(only --trials and --jobs may change)")
        summary = run_sweep(args.resume, args.jobs, trials=args.trials)
    else:
        if args.trials is None:
            raise UserError("give --trials N, the number of trials to run")
        opts = SweepOptions(args.recipe, list(args.param or []), args.trials, list(args.set or []),
                            args.sampler or "tpe", args.prune, args.pruner or "median", args.seed, args.name,
                            args.runs_dir)
        summary = start_sweep(opts, args.jobs)
    print_sweep(summary)
    return 0


def print_sweep(summary) -> None:
    """The trials table, the best trial and its recipe, and the parameter importances."""
    from ..terminal.console import console
    from ..tune.sweep_report import sweep_table

    console().print(sweep_table(summary))
    if summary.best is None:
        print("no trial completed: no best recipe")
    else:
        b = summary.best
        print(f"best: trial {b.number}, {summary.metric} {b.value:.4g} ({b.run})")
        print(f"best recipe: {summary.best_recipe}  (zerotune train {shlex.quote(str(summary.best_recipe))})")
    if summary.importances:
        shown = "  ".join(f"{k} {v:.2f}" for k, v in summary.importances.items())
        print(f"parameter importances (fANOVA): {shown}")
    elif summary.importance_note:
        print(summary.importance_note)


def add_parser(subparsers) -> None:
    """Register `lr-find` and `sweep` on the CLI's subparsers."""
    p = subparsers.add_parser("lr-find", help="learning-rate range test: sweep the rate, suggest one")
    p.add_argument("recipe", nargs="?", help="TOML or YAML recipe (default: built-in digits CNN)")
    p.add_argument("--set", action="append", metavar="GROUP.FIELD=VALUE", help="override a config value (repeatable)")
    p.add_argument("--start", type=float, default=1e-7, help="first learning rate of the sweep (default 1e-7)")
    p.add_argument("--end", type=float, default=10.0, help="last learning rate of the sweep (default 10)")
    p.add_argument("--steps", type=int, default=100, help="optimizer steps, one rate each (default 100)")
    p.add_argument("--name", help="name of the test's run directory (default lr-find-<data>-<model>-<time>)")
    p.add_argument("--runs-dir", help="parent directory of that run directory (default log.dir)")
    p.set_defaults(func=cmd_lr_find)

    s = subparsers.add_parser("sweep", help="hyperparameter search with Optuna; each trial is a run directory")
    s.add_argument("recipe", nargs="?", help="TOML or YAML recipe (default: built-in digits CNN)")
    s.add_argument("--param", action="append", metavar="KEY=SPEC",
                   help="a searched config key (repeatable): loguniform:LOW:HIGH, uniform:LOW:HIGH, int:LOW:HIGH[:log], "
                        "choice:A,B,...")
    s.add_argument("--trials", type=int, help="trials to run (with --resume: a new budget)")
    s.add_argument("--jobs", type=int, default=1, help="worker processes running trials side by side (default 1)")
    s.add_argument("--prune", action="store_true", help="stop hopeless trials early (see --pruner)")
    s.add_argument("--sampler", choices=["tpe", "random", "grid"], help="how values are drawn (default tpe)")
    s.add_argument("--pruner", choices=["median", "halving"], help="with --prune: the median rule (default) or "
                   "successive halving")
    s.add_argument("--seed", type=int, default=0, help="the sampler's seed (default 0)")
    s.add_argument("--set", action="append", metavar="GROUP.FIELD=VALUE", help="fix a config value for every trial")
    s.add_argument("--name", help="sweep directory name (default sweep-<data>-<model>-<time>)")
    s.add_argument("--runs-dir", help="parent directory of the sweep directory (default log.dir)")
    s.add_argument("--resume", metavar="SWEEP", help="continue the sweep in this directory")
    s.set_defaults(func=cmd_sweep)
