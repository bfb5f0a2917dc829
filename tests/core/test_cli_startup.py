"""`zerotune --help` and `--version` load no heavy module: they start at once on any machine."""

import json
import os
import subprocess
import sys

import pytest

HEAVY = ("torch", "numpy", "pydantic", "rich", "sklearn", "tensorboardX", "tensorboard", "transformers", "yaml",
         "safetensors", "scipy", "matplotlib", "PIL", "fastapi", "uvicorn", "onnx", "onnxruntime", "tqdm")

# Runs the console entry point, then prints the heavy top-level packages it left loaded.
PROBE = """
import json, runpy, sys
sys.argv = ["zerotune", *json.loads(sys.argv[1])]
try:
    runpy.run_module("zerotune", run_name="__main__")
except SystemExit as e:
    pass
print("\\nLOADED " + json.dumps([m for m in HEAVY if m in sys.modules]))
"""


def loaded_after(*argv: str) -> tuple[list[str], str]:
    code = PROBE.replace("HEAVY", json.dumps(HEAVY))
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(argv)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "COLUMNS": "200"})
    out, _, loaded = proc.stdout.rpartition("\nLOADED ")
    assert loaded, proc.stderr
    return json.loads(loaded), out


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["-h"]])
def test_help_and_version_import_no_heavy_module(argv):
    loaded, out = loaded_after(*argv)
    assert loaded == []
    assert "zerotune" in out


def test_help_still_lists_every_command():
    _, out = loaded_after("--help")
    for command in ("train", "eval", "generate", "finetune", "board", "runs", "report", "export", "serve", "scratch"):
        assert f"    {command} " in out, out


@pytest.mark.parametrize("command, flag", [("export", "--opset"), ("serve", "--backend"), ("scratch", "linreg"),
                                           ("finetune", "--strategy")])
def test_a_commands_help_still_shows_its_options(command, flag):
    _, out = loaded_after(command, "--help")
    assert flag in out, out


def test_public_api_is_still_importable_from_the_package():
    import zerotune

    assert callable(zerotune.train) and callable(zerotune.evaluate) and zerotune.Config.__name__ == "Config"
    import zerotune.train.callbacks  # noqa: F401  (binding the subpackage keeps the function)

    assert callable(zerotune.train)
