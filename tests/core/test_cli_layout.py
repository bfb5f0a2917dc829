"""The command line's shape: one table in cli/main.py that nothing imports back, shared flags defined once."""

import argparse
import ast
from pathlib import Path

import pytest

import zerotune
from zerotune.cli import common, export, finetune, scratch, serve
from zerotune.cli.main import build_parser

SRC = Path(zerotune.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside functions, as an absolute name."""
    package = ".".join(("zerotune", *path.relative_to(SRC).parent.parts))
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module) if p)
            names.add(module)
            names.update(f"{module}.{a.name}" for a in node.names)  # `from . import main`
    return names


def test_only_the_entry_point_imports_the_top_cli():
    importers = sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if "zerotune.cli.main" in imported_modules(p))
    assert importers == ["__main__.py"]


def test_no_command_module_lives_outside_cli():
    assert sorted(str(p.relative_to(SRC)) for p in SRC.rglob("cli.py")) == []


@pytest.mark.parametrize("module, argv", [
    (export, ["export", "RUN", "--int8", "dynamic"]),
    (serve, ["serve", "RUN", "--port", "0"]),
    (finetune, ["finetune", "recipe.toml", "--strategy", "lora", "--name", "n"]),
    (scratch, ["scratch", "mlp", "--hidden", "8"]),
])
def test_a_command_on_its_own_parses_as_under_zerotune(module, argv):
    alone = vars(common.command_parser(module.add_parser).parse_args(argv))
    full = vars(build_parser().parse_args(argv))
    assert alone.pop("func").__qualname__ == full.pop("func").__qualname__  # scratch makes one per parser
    assert alone == full


def _options(parser: argparse.ArgumentParser, command: str) -> dict[str, tuple]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    return {a.dest: (tuple(a.option_strings), a.help) for a in sub._actions}


def test_train_and_finetune_share_the_run_flags():
    parser = build_parser()
    train, tune = _options(parser, "train"), _options(parser, "finetune")
    for dest in ("set", "name", "runs_dir", "no_progress", "test"):
        assert train[dest] == tune[dest]
    args = parser.parse_args(["finetune", "--name", "a", "--runs-dir", "r", "--no-progress", "--test", "t.txt"])
    assert common.run_flags_as_overrides(args) == ['data.test_path="t.txt"', "log.name=a", "log.dir=r",
                                                   "log.progress=false"]
