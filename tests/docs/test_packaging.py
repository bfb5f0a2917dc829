"""What a plain `pip install zerotune` brings: TensorBoard is the product's centre, not an extra."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_tensorboard_is_a_core_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    # `zerotune board`, `runs`, `report` and the Graphs tab all need it.
    assert {"tensorboard", "tensorboardx"} <= _names(project["dependencies"])
    extras = project["optional-dependencies"]
    assert extras.get("board") == []  # kept, empty, so that `pip install zerotune[board]` still resolves
    assert not any("tensorboard" in _names(reqs) for reqs in extras.values())


def test_the_pages_are_package_data():
    # `zerotune serve` reads its pages with importlib.resources: an installed wheel must hold them
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]
    pages = ROOT / "src" / "zerotune" / "serve"
    shipped = {p for pattern in data["zerotune.serve"] for p in pages.glob(pattern)}
    assert {"chat.html", "predict.html"} <= {p.name for p in shipped} == {p.name for p in (pages / "pages").iterdir()}
