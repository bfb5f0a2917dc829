"""The `zerotune` command: a table of subcommands, each a thin call into the Python API."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import UserError


def cmd_train(args) -> int:
    from ..pipeline.train import train
    from ..config import load_config

    overrides = list(args.set or [])
    if args.resume:
        if args.recipe:
            raise UserError("give either a recipe or --resume RUN, not both")
    else:
        overrides += run_flags_as_overrides(args)
        config = load_config(args.recipe, overrides)
    board = None
    if args.board:
        from ..track.board import start_board

        logdir = Path(args.resume).parent if args.resume else config.log.dir
        board = start_board(logdir, port=args.port)
        print(f"TensorBoard: {board.url}", flush=True)
    try:
        result = train(None, resume=args.resume, resume_overrides=overrides) if args.resume else train(config)
        _print_summary(result.run_dir, result.metrics)
        if board is not None and sys.stdin.isatty():
            print(f"training done; TensorBoard stays at {board.url} until Ctrl-C", flush=True)
            board.wait()
    finally:
        if board is not None:
            board.stop()
    return 0


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


def _print_summary(run_dir, metrics: dict) -> None:
    split = "test" if metrics["test"].get("n") else "val"  # a corpus may have no test part
    result = metrics[split]
    if "perplexity" in result:
        keys = ("loss", "perplexity", "bits_per_token")
    elif "accuracy" in result:
        keys = ("accuracy", "f1_macro", "roc_auc")
    else:
        keys = ("r2", "mse", "mae")
    shown = "  ".join(f"{k} {result[k]:.4f}" for k in keys if result.get(k) is not None)
    stop = metrics["training"]["stop_reason"]
    print(f"run: {run_dir}\n{split} ({metrics['checkpoint']} checkpoint): {shown}" + (f"\n{stop}" if stop else ""))


def cmd_eval(args) -> int:
    from ..pipeline.train import dumps_metrics, evaluate

    m = evaluate(args.run, split=args.split, checkpoint=args.checkpoint)
    if args.json:
        print(dumps_metrics(m))
        return 0
    from .report_text import print_eval

    print_eval(m)
    return 0


def cmd_generate(args) -> int:
    from ..lm.generation import generate

    pieces = generate(args.run, args.prompt, max_new_tokens=args.max_tokens, temperature=args.temperature,
                      top_k=args.top_k, top_p=args.top_p, seed=args.seed, stop=args.stop or (),
                      checkpoint=args.checkpoint, use_cache=not args.no_cache, device=args.device)
    if args.no_stream:
        print(args.prompt + "".join(pieces), flush=True)
        return 0
    sys.stdout.write(args.prompt)
    for piece in pieces:
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0


def cmd_models(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from ..models.registry import list_models, model_defaults

    table = Table("name", "input", "description", "options (defaults)")
    for e in list_models():
        opts = ", ".join(f"{k}={v}" for k, v in model_defaults(e.name).items())
        table.add_row(e.name, e.input_kind, e.summary, opts)
    Console().print(table)
    return 0


def cmd_datasets(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from ..data.sources import SOURCES

    table = Table("name", "needs data.path", "description")
    for s in SOURCES.values():
        table.add_row(s.name, "yes" if s.needs_path else "no", s.summary)
    # Tokenised data, built by data/text.py and data/corpus.py rather than as arrays:
    table.add_row("text", "yes", "labelled texts (TSV, CSV or JSONL) for a pretrained transformer (model hf)")
    table.add_row("corpus", "yes", "any UTF-8 text file or folder of .txt files for a language model (model gpt)")
    Console().print(table)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    p = argparse.ArgumentParser(prog="zerotune", description="Train, fine-tune, inspect and ship models; see it all in TensorBoard.")
    p.add_argument("--version", action="version", version=f"zerotune {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a model from a recipe (or the defaults)")
    t.add_argument("recipe", nargs="?", help="TOML or YAML recipe (default: built-in digits CNN)")
    t.add_argument("--set", action="append", metavar="GROUP.FIELD=VALUE", help="override a config value (repeatable)")
    t.add_argument("--resume", metavar="RUN", help="continue the run in this directory")
    t.add_argument("--name", help="run name (log.name)")
    t.add_argument("--runs-dir", help="parent directory of runs (log.dir)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--test", metavar="FILE", help="text data: a file used whole as the test split (data.test_path)")
    t.add_argument("--board", action="store_true", help="start TensorBoard on the runs directory for a live view")
    t.add_argument("--port", type=int, default=6006, help="TensorBoard port for --board (0: any free port)")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="print a run's metrics on a split")
    e.add_argument("run", help="run directory")
    e.add_argument("--split", default="test", choices=["train", "val", "test"])
    e.add_argument("--checkpoint", default="best", choices=["best", "last"])
    e.add_argument("--json", action="store_true", help="print JSON")
    e.set_defaults(func=cmd_eval)

    g = sub.add_parser("generate", help="continue a prompt with a language-model run, streaming")
    g.add_argument("run", help="run directory of a language model (model gpt, data corpus)")
    g.add_argument("--prompt", required=True, help="text to continue")
    g.add_argument("--max-tokens", type=int, default=200, help="tokens to generate at most (default 200)")
    g.add_argument("--temperature", type=float, default=0.8, help="0: greedy; higher: more random (default 0.8)")
    g.add_argument("--top-k", type=int, help="sample among the k most likely tokens")
    g.add_argument("--top-p", type=float, help="sample among the most likely tokens up to probability p")
    g.add_argument("--seed", type=int, help="seed for a reproducible sample")
    g.add_argument("--stop", action="append", metavar="TEXT", help="stop before this text (repeatable)")
    g.add_argument("--checkpoint", default="best", choices=["best", "last"])
    g.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    g.add_argument("--no-stream", action="store_true", help="print the whole text at the end")
    g.add_argument("--no-cache", action="store_true", help="recompute every past token at each step (slower; same output)")
    g.set_defaults(func=cmd_generate)

    sub.add_parser("models", help="list registered models").set_defaults(func=cmd_models)
    sub.add_parser("datasets", help="list data sources").set_defaults(func=cmd_datasets)

    from ..export.cli import add_parser as add_export
    from ..finetune.cli import add_parser as add_finetune
    from ..scratch.cli import add_parser as add_scratch
    from ..serve.cli import add_parser as add_serve
    from ..track.cli import add_parsers as add_track

    add_finetune(sub)
    add_track(sub)  # board, runs, report
    add_export(sub)
    add_serve(sub)
    add_scratch(sub)
    return p


def run_subcommand(name: str, argv: list[str] | None = None) -> int:
    """``python -m zerotune.<name> ARGS`` behaves exactly as ``zerotune <name> ARGS``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == [name]:
        argv = argv[1:]
    return main([name, *argv])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except UserError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug, not bad input: say so in one line unless --debug
        if debug:
            raise
        print(f"error: internal error {type(e).__name__}: {e} (run again with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
