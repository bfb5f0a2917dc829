"""`zerotune finetune`: start, resume, merge or export the adapters of a fine-tune."""

from __future__ import annotations

import argparse

from ..errors import UserError
from .common import add_run_flags, resume_flags_as_overrides, run_flags_as_overrides, run_subcommand
from .distributed import add_distributed_flags, wants_distributed

STRATEGIES = ("full", "head", "partial", "gradual", "lora")


def cmd_finetune(args) -> int:
    """Run the action the arguments ask for; returns the exit code."""
    from ..pipeline.finetune import finetune, merge_lora, save_adapters
    from ..doctor.after_training import print_serious

    if args.merge_lora or args.save_adapters:
        if args.recipe or args.source or args.resume:
            raise UserError("--merge-lora and --save-adapters take a run alone, without a recipe, --from or --resume")
        if args.merge_lora:
            print(f"merged run: {merge_lora(args.merge_lora, args.out, args.checkpoint)}")
        else:
            print(f"adapters: {save_adapters(args.save_adapters, args.out, args.checkpoint)}")
        return 0
    overrides = list(args.set or [])
    if args.resume and (args.recipe or args.source or args.strategy):
        raise UserError("give either a recipe (with --from) or --resume RUN, not both")
    if args.resume:
        overrides += resume_flags_as_overrides(args)
    if wants_distributed(args):  # several processes: a launcher, or one of the workers
        from ..pipeline.finetune import finetune_config, finetune_overrides
        from .distributed import run_distributed

        config = None
        if not args.resume:
            overrides = finetune_overrides(args.source, args.strategy, overrides + run_flags_as_overrides(args))
            config = finetune_config(args.recipe, overrides)
        return run_distributed(args, overrides, config, print_summary, command="finetune")
    if args.resume:
        from ..pipeline.train import train

        result = train(None, resume=args.resume, resume_overrides=overrides)
    else:
        overrides += run_flags_as_overrides(args)
        result = finetune(args.recipe, source=args.source, strategy=args.strategy, overrides=overrides)
    print_summary(result.run_dir, result.metrics)
    print_serious(result.findings, result.run_dir)
    return 0


def print_summary(run_dir, metrics: dict) -> None:
    """Before/after in a few lines."""
    ft = metrics.get("finetune", {})
    after, before, probe = ft.get("after", {}), ft.get("before") or {}, ft.get("probe") or {}
    print(f"run: {run_dir}")
    later = "".join(f", {s['trainable']:,} ({s['trainable_percent']:.2f}%) from epoch {s['epoch']}"
                    for s in ft.get("stages", [])[1:])
    print(f"strategy {ft.get('strategy')}: {ft.get('trainable', 0):,} of {ft.get('parameters', 0):,} parameters "
          f"trainable at the start ({ft.get('trainable_percent', 0):.2f}%){later}, head {ft.get('head')}")
    keys = ([k for k in ("val/accuracy", "test/accuracy") if k in after]
            or [k for k in ("val/exact_match", "test/exact_match") if k in after]  # instruction tuning
            or [f"{split}/{k}" for k in ("rewards/accuracy", "answers/preferred", "answers/chosen")  # preference
                for split in ("val", "test") if f"{split}/{k}" in after]
            or ["val/loss", "test/loss"])  # lm: loss
    for k in keys:
        if k in after:
            parts = [f"before {before[k]:.4f}" if k in before else None,
                     f"linear probe {probe[k]:.4f}" if k in probe else None, f"after {after[k]:.4f}"]
            print(f"{k}: " + "  ".join(p for p in parts if p))
    stop = metrics.get("training", {}).get("stop_reason")
    if stop:
        print(stop)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``finetune`` on the CLI's subparsers."""
    p = subparsers.add_parser("finetune", help="fine-tune a run or a pretrained transformer (full, head, partial, "
                                               "gradual, lora)")
    p.add_argument("recipe", nargs="?", help="TOML or YAML recipe of the target task")
    p.add_argument("--from", dest="source", metavar="SOURCE",
                   help="run directory, transformers model directory or alias (minilm-l6)")
    p.add_argument("--strategy", choices=STRATEGIES, help="finetune.strategy")
    add_run_flags(p, resume_help="continue the fine-tune in this directory")
    add_distributed_flags(p)
    p.add_argument("--merge-lora", metavar="RUN", help="write a copy of a LoRA run with the adapters merged in")
    p.add_argument("--save-adapters", metavar="RUN", help="save a LoRA run's adapters and head alone")
    p.add_argument("--out", help="with --merge-lora / --save-adapters: where to write")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"], help="with --merge-lora / --save-adapters")
    p.set_defaults(func=cmd_finetune)
    return p


def main(argv: list[str] | None = None) -> int:
    """``python -m zerotune.finetune ...``: the same as ``zerotune finetune ...``."""
    return run_subcommand("finetune", add_parser, argv)
