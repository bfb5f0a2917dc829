"""`zerotune cv`: flags -> config -> `pipeline.cv.cross_validate`; the mean ± std table printed."""

from __future__ import annotations


def cmd_cv(args) -> int:
    from ..config import load_config
    from ..pipeline.cv import cross_validate, format_summary
    from ..run.files import cv_summary_file

    overrides = list(args.set or [])
    if args.runs_dir:
        overrides.append(f"log.dir={args.runs_dir}")
    if args.no_progress:
        overrides.append("log.progress=false")
    if args.name is not None:
        load_config(None, [f"log.name={args.name}"])  # the same rule as a run's name, checked before anything runs
    result = cross_validate(load_config(args.recipe, overrides), args.folds, name=args.name)
    print(format_summary(result.summary))
    print(f"folds: {result.path} (zerotune board {result.path}); summary: {cv_summary_file(result.path)}")
    return 0


def add_parser(subparsers) -> None:
    """Register `cv` on the CLI's subparsers."""
    p = subparsers.add_parser("cv", help="k-fold cross-validation: one run per fold, mean ± std of their metrics")
    p.add_argument("recipe", nargs="?", help="TOML or YAML recipe (default: built-in digits CNN)")
    p.add_argument("--folds", type=int, default=5, help="number of folds K (default 5)")
    p.add_argument("--set", action="append", metavar="GROUP.FIELD=VALUE", help="override a config value (repeatable)")
    p.add_argument("--name", help="folder of the fold runs under the runs directory (default <data>-<model>-cv-<time>)")
    p.add_argument("--runs-dir", help="parent directory of that folder (log.dir)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_cv)
