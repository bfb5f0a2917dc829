"""`zerotune models` and `zerotune datasets`: tables of what the registries hold."""

from __future__ import annotations


def cmd_models(args) -> int:
    from ..terminal.console import console
    from rich.table import Table

    from ..models.registry import list_models, model_defaults

    table = Table("name", "input", "description", "options (defaults)")
    for e in list_models():
        opts = ", ".join(f"{k}={v}" for k, v in model_defaults(e.name).items())
        table.add_row(e.name, e.input_kind, e.summary, opts)
    console().print(table)
    return 0


def cmd_datasets(args) -> int:
    from ..terminal.console import console
    from rich.table import Table

    from ..data.sources import SOURCES

    table = Table("name", "needs data.path", "description")
    for s in SOURCES.values():
        table.add_row(s.name, "yes" if s.needs_path else "no", s.summary)
    # Tokenised data, built by data/text.py and data/corpus.py rather than as arrays:
    table.add_row("text", "yes", "labelled texts (TSV, CSV or JSONL) for a pretrained transformer (model hf)")
    table.add_row("corpus", "yes", "any UTF-8 text file or folder of .txt files for a language model (model gpt)")
    console().print(table)
    return 0


def add_parsers(subparsers) -> None:
    """Register `models` and `datasets` on the CLI's subparsers."""
    subparsers.add_parser("models", help="list registered models").set_defaults(func=cmd_models)
    subparsers.add_parser("datasets", help="list data sources").set_defaults(func=cmd_datasets)
