"""Helpers of the bad-input tests: a tiny trained run, the CLI called in-process, a digest of a folder.

Imported by test_bad_input_cli.py and test_bad_input_property.py (pytest puts this folder on sys.path).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from zerotune.cli.main import main

# a 1-epoch logistic regression on iris, with TensorBoard events for doctor and report: a second to train
TINY_RUN = ["data.name=iris", "model.name=logistic_regression", "train.epochs=1", "train.batch_size=32",
            "log.progress=false", "log.graph=false", "log.embeddings=false", "log.histograms_every=0"]

# each command that reads a run directory, with the flags that keep it quick; {run} and {out} are filled in
RUN_COMMANDS = {
    "eval": ["eval", "{run}"],
    "resume": ["train", "--resume", "{run}", "--no-progress", "--set", "train.epochs=2"],
    "finetune": ["finetune", "--from", "{run}", "--runs-dir", "{out}", "--no-progress", "--set", "train.epochs=1",
                 "--set", "data.name=iris"],
    "export": ["export", "{run}", "--out", "{out}/model.onnx"],
    "serve": ["serve", "{run}", "--port", "0"],
    "doctor": ["doctor", "{run}"],
    "report": ["report", "{run}", "--out", "{out}/report.html"],
    "generate": ["generate", "{run}", "--prompt", "hi", "--max-tokens", "2"],
    "summary": ["summary", "{run}"],
    "profile": ["profile", "{run}", "--steps", "1"],
}


def train_tiny_run(root: Path, name: str = "iris", tensorboard: bool = True) -> Path:
    """Train the tiny run under `root`; returns its directory."""
    import zerotune
    from zerotune.config import load_config

    cfg = load_config(None, [*TINY_RUN, f"log.dir={root}", f"log.name={name}", f"log.tensorboard={tensorboard}"])
    return zerotune.train(cfg).run_dir


def copy_run(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest)
    return dest


def command(name: str, run: Path, out: Path) -> list[str]:
    return [a.format(run=run, out=out) for a in RUN_COMMANDS[name]]


def call(capsys, argv: list[str]) -> tuple[int, str, str]:
    """``zerotune ARGV`` in this process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_refused(code: int, out: str, err: str, *needles: str) -> str:
    """Exit 2, one line on stderr that starts with ``error:`` and holds each needle, and no traceback."""
    assert code == 2, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in out + err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def tree_digest(root: Path) -> str:
    """A hash of every path, its kind and every file's bytes under `root`: equal digests, same tree."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames) + [d + "/" for d in dirnames]:
            path = Path(dirpath) / name.rstrip("/")
            h.update(str(path.relative_to(root)).encode() + (b"/" if name.endswith("/") else b""))
            if path.is_file() and not path.is_symlink():
                h.update(path.read_bytes())
    return h.hexdigest()
