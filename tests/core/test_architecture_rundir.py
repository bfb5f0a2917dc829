"""Every file name of a run directory is spelled in run/ only; other modules go through `RunDir`."""

from __future__ import annotations

import ast
from pathlib import Path

from zerotune.run import files

SRC = Path(files.__file__).resolve().parents[1]  # src/zerotune

# Words with other meanings too (a model name, a config key, a subcommand, a TensorBoard tag's prefix):
# a literal of one says nothing, so these go through RunDir unchecked.
GENERIC = {files.HF_DIR, files.TOKENIZER_DIR, files.EXPORT_DIR, files.SCALING_DIR, files.EVAL_DIR}
NAMES = set(files.FILE_NAMES) - GENERIC

# (module, literal) pairs that name something else than a run's file
ALLOWED = {
    ("models/hf.py", files.MODEL_FILE),  # the weights of a transformers model directory
}


def run_file_literals(source: str) -> list[tuple[int, str]]:
    """The string literals in `source` that are, or have as a path part, a run directory's file name."""
    tree = ast.parse(source)
    docs = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}  # docstrings, prose
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            if NAMES.intersection(node.value.split("/")):
                found.append((node.lineno, node.value))
    return sorted(found)


def test_the_check_finds_names_in_paths_and_literals():
    source = ('"""Writes runs/x/checkpoints/best."""\n'
              'a = run / "metrics.json"\nb = "checkpoints/best"\nc = "the metrics.json file"\nd = "hf"\n')
    assert run_file_literals(source) == [(2, "metrics.json"), (3, "checkpoints/best")]


def test_the_names_cover_the_run_directory():
    for name in ("config.yaml", "meta.json", "env.json", "metrics.json", "finetune.json", "checkpoints",
                 "state.json", "model.safetensors", "optimizer.safetensors", "adapters"):
        assert name in NAMES


def test_no_run_file_name_outside_run_package():
    offences = []
    for path in sorted(SRC.rglob("*.py")):
        module = path.relative_to(SRC).as_posix()
        if module.startswith("run/"):
            continue
        for line, literal in run_file_literals(path.read_text(encoding="utf-8")):
            if (module, literal) not in ALLOWED:
                offences.append(f"{module}:{line}: {literal!r}")
    assert not offences, "use zerotune.run.files.RunDir instead of:\n" + "\n".join(offences)
