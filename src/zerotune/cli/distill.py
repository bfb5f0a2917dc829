"""`zerotune distill`: train a student recipe against a teacher run's soft targets (or resume one)."""

from __future__ import annotations

import argparse

from ..errors import UserError
from .common import add_run_flags, resume_flags_as_overrides, run_flags_as_overrides, run_subcommand


def cmd_distill(args) -> int:
    """Start (or resume) a distillation and print the student next to its teacher; returns the exit code."""
    overrides = list(args.set or [])
    if args.resume:
        if args.recipe or args.teacher:
            raise UserError("give either a recipe with --teacher, or --resume RUN, not both")
        overrides += resume_flags_as_overrides(args)
        from ..pipeline.train import train

        result = train(None, resume=args.resume, resume_overrides=overrides)
    else:
        from ..pipeline.distill import distill

        result = distill(args.recipe, teacher=args.teacher, overrides=overrides + run_flags_as_overrides(args))
    print_summary(result.run_dir, result.metrics)
    return 0


def print_summary(run_dir, metrics: dict) -> None:
    """Student and teacher accuracy, their agreement and their sizes, in a few lines."""
    d, test = metrics.get("distill", {}), metrics.get("test", {})
    split = "test" if test.get("n") else "val"
    result = metrics[split]
    print(f"run: {run_dir}")
    print(f"teacher {d.get('teacher')}: {d.get('teacher_parameters', 0):,} parameters; student "
          f"{d.get('student_parameters', 0):,} ({d.get('parameter_ratio', 0):.2%}); T={d.get('temperature')} "
          f"alpha={d.get('alpha')}, teacher logits {d.get('teacher_logits')}")
    teacher_acc = d.get(f"teacher_{split}_accuracy")
    shown = f"student accuracy {result.get('accuracy', float('nan')):.4f}"
    if teacher_acc is not None:
        shown += f"  teacher accuracy {teacher_acc:.4f}"
    if result.get("teacher_agreement") is not None:
        shown += f"  agreement {result['teacher_agreement']:.4f}"
    print(f"{split} ({metrics['checkpoint']} checkpoint): {shown}")
    stop = metrics.get("training", {}).get("stop_reason")
    if stop:
        print(stop)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``distill`` on the CLI's subparsers."""
    p = subparsers.add_parser("distill", help="train a small student on a teacher run's soft targets "
                                              "(knowledge distillation)")
    p.add_argument("recipe", nargs="?", help="TOML or YAML recipe of the student (data, model, training)")
    p.add_argument("--teacher", metavar="RUN", help="the teacher's run directory (distill.teacher)")
    add_run_flags(p, resume_help="continue the distillation in this directory")
    p.set_defaults(func=cmd_distill)
    return p


def main(argv: list[str] | None = None) -> int:
    """``python -m zerotune.distill ...``: the same as ``zerotune distill ...``."""
    return run_subcommand("distill", add_parser, argv)
