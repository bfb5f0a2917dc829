"""docs/architecture.md against the code: the files it names exist, its package map covers every
package, its layers are the ones tests/test_architecture.py enforces, its callback events are the
ones `Callback` has, and each "where to add" row names one file to edit and one test."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "zerotune"
DOC = ROOT / "docs" / "architecture.md"
# `src/zerotune/...`, `tests/...`, or a path inside the package such as `train/loop.py`.
PATH = re.compile(r"`((?:src/zerotune|tests)/[\w./]+|[a-z_]+/[\w/]+\.py)`")


def _section(title: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def _table_rows(title: str) -> list[list[str]]:
    rows = [line.strip("|").split("|") for line in _section(title).splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row] for row in rows[1:]]  # without the header


def _resolve(path: str) -> Path:
    return ROOT / path if path.startswith(("src/", "tests/")) else PACKAGE / path


def test_every_path_the_doc_names_exists():
    named = PATH.findall(DOC.read_text(encoding="utf-8"))
    assert len(named) > 20, "the pattern no longer finds the doc's paths"
    missing = sorted({p for p in named if not _resolve(p).exists()})
    assert not missing, f"docs/architecture.md names files that do not exist: {missing}"


def test_package_map_covers_every_package_and_top_level_module():
    mapped = {row[0].strip("`").rstrip("/") for row in _table_rows("Packages")}
    packages = {f"src/zerotune/{p.parent.name}" for p in PACKAGE.glob("*/__init__.py")}
    modules = {f"src/zerotune/{p.name}" for p in PACKAGE.glob("*.py")} - {
        "src/zerotune/__init__.py", "src/zerotune/__main__.py"}
    assert mapped == packages | modules


def test_layers_are_the_enforced_ones():
    spec = importlib.util.spec_from_file_location("architecture", ROOT / "tests" / "test_architecture.py")
    architecture = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(architecture)
    rows = _table_rows("Layers")
    assert [int(row[0]) for row in rows] == list(range(1, len(rows) + 1))
    assert [re.findall(r"`(\w+)`", row[1]) for row in rows] == architecture.LAYERS


def test_callback_events_are_the_protocols():
    from zerotune.train.callbacks import Callback

    documented = [row[0].strip("`") for row in _table_rows("Callback events")]
    hooks = {name for name in vars(Callback) if name.startswith("on_")}
    assert set(documented) == hooks and len(documented) == len(hooks)


def test_each_where_names_one_file_to_edit_and_one_test():
    rows = _table_rows("Where to add")
    assert [row[0] for row in rows] == [
        "a model", "a data source", "a TensorBoard view", "a fine-tuning strategy", "a training mode",
        "a preference loss", "an export format"]
    for what, edit, test in rows:
        assert re.match(r"`src/zerotune/[\w/]+\.py`", edit), f"{what}: the edit cell starts with the file"
        assert len(re.findall(r"`tests/[\w/]+\.py`", test)) == 1, f"{what}: one test file"
