"""Functions stay short enough to read in one sitting: at most 60 lines in ``train/`` (the loop a
newcomer reads first), at most 80 elsewhere in ``src/``.

Length is counted with ``ast`` from the ``def`` line to the last line, docstring and nested
functions included. Teaching code in ``scratch/`` may stay whole where splitting it would hide
the lesson; each such function is listed below with its reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "zerotune"
TRAIN_LIMIT = 60
LIMIT = 80

# "path relative to src/zerotune::function" -> why it reads better whole.
TEACHING_EXCEPTIONS = {
    "scratch/optim.py::minimize":
        "the gradient-descent loop (batch, mini-batch, SGD, momentum, divergence checks) "
        "read top to bottom is the lesson",
}


def _functions():
    """(key, length) of every function and method in the package, nested ones included."""
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield f"{relative}::{node.name}", node.end_lineno - node.lineno + 1


def _limit(key: str) -> int:
    return TRAIN_LIMIT if key.startswith("train/") else LIMIT


def test_no_function_is_too_long():
    too_long = [f"{key}: {length} lines (limit {_limit(key)})"
                for key, length in _functions()
                if length > _limit(key) and key not in TEACHING_EXCEPTIONS]
    assert not too_long, "split these functions:\n" + "\n".join(too_long)


def test_exceptions_are_scratch_functions_that_need_them():
    lengths = dict(_functions())
    for key, reason in TEACHING_EXCEPTIONS.items():
        assert key.startswith("scratch/"), f"{key}: only teaching code may be excepted"
        assert reason, f"{key}: say why it reads better whole"
        assert key in lengths, f"{key}: no such function any more; drop it from the list"
        assert lengths[key] > _limit(key), f"{key}: now within the limit; drop it from the list"
