"""Training modes as plugins: which modes a run has, that the jobs compare no mode names, and that a new
mode is one module plus one line in the registry, and trains end to end."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from zerotune.config import load_config
from zerotune.modes import registry
from zerotune.modes.distill import Distill
from zerotune.modes.finetune import Finetune
from zerotune.modes.lm import LanguageModel
from zerotune.modes.preference import Preference
from zerotune.modes.sft import InstructionTuning
from zerotune.modes.supervised import Supervised

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "zerotune"
IRIS = ["data.name=iris", "model.name=mlp", "model.hidden=[8]", "train.epochs=2", "train.threads=1",
        "log.progress=false", "log.graph=false", "log.embeddings=false", "log.images=false"]

# A mode of its own, outside zerotune: a metric in metrics.json and a scalar beside the run's own.
TOY_MODE = '''
from zerotune.modes.base import Mode
from zerotune.train.callbacks import Callback


class Toy(Mode):
    """Added to every run: how many parameters the model has, and the validation loss doubled."""

    suffix = "-toy"

    @classmethod
    def applies(cls, config):
        return True

    def views(self, run, run_dir, shown):
        return [DoubledLoss(shown[0])]

    def report(self, run, run_dir, metrics, step):
        metrics["toy"] = {"parameters": sum(p.numel() for p in run.model.parameters())}


class DoubledLoss(Callback):
    def __init__(self, board):
        self.board = board

    def on_eval_end(self, state):
        self.board.sink.scalars(state.step, (("toy/doubled_val_loss", 2 * state.metrics["val/loss"]),))
'''


def _kinds(overrides: list[str]) -> list[type]:
    return [type(m) for m in registry.modes_for(load_config(None, overrides))]


def test_a_run_has_one_base_mode_then_the_added_ones():
    assert _kinds(["data.name=iris"]) == [Supervised]
    assert _kinds(["data.name=corpus", "model.name=gpt"]) == [LanguageModel]
    assert _kinds(["data.name=sft", "finetune.source=some-run", "finetune.strategy=lora"]) == [
        InstructionTuning, Finetune]
    assert _kinds(["data.name=digits", "finetune.source=a", "distill.teacher=b"]) == [Supervised, Finetune, Distill]
    assert _kinds(["data.name=preference", "finetune.source=a", "finetune.strategy=full"]) == [Preference, Finetune]


def test_the_jobs_compare_no_mode_names():
    """`pipeline/` asks the run's modes; what a task or a data set is called decides nothing there."""
    names = re.compile(r'meta\.task|task\.kind|is_finetune|is_distill|"(sft|lm|corpus)"')
    found = [f"{path.name}:{n}: {line.strip()}" for path in sorted((PACKAGE / "pipeline").glob("*.py"))
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if names.search(line)]
    assert not found, "\n".join(found)


def test_each_registered_mode_is_one_line_of_the_registry():
    listed = re.search(r"MODES: .*?= \[\n(.*?)\n\]", (PACKAGE / "modes" / "registry.py").read_text(), re.DOTALL)
    assert [line.strip().rstrip(",") for line in listed.group(1).splitlines()] == [f'"{e}"' for e in registry.MODES]
    assert [registry.mode_class(e) for e in registry.MODES] == [InstructionTuning, Preference, LanguageModel,
                                                               Supervised, Finetune, Distill]


def test_a_new_mode_is_one_module_and_one_registry_line_and_trains(tmp_path, monkeypatch, read_events):
    package = tmp_path / "toymode"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent(TOY_MODE), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert [p.name for p in package.rglob("*") if p.is_file()] == ["__init__.py"]  # the whole mode
    monkeypatch.setattr(registry, "MODES", [*registry.MODES, "toymode:Toy"])  # the registry's one new line

    from zerotune.pipeline.train import train
    from zerotune.runload.load import load_run

    result = train(load_config(None, [*IRIS, f"log.dir={tmp_path / 'runs'}"]))
    assert result.run_dir.name.startswith("iris-mlp-toy-")
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert metrics["toy"]["parameters"] == sum(p.numel() for p in load_run(result.run_dir).model.parameters())
    events = read_events(result.run_dir)
    doubled = [e.value for e in events.Scalars("toy/doubled_val_loss")]
    val = [e.value for e in events.Scalars("val/loss")]
    assert len(doubled) == len(val) >= 2 and doubled == pytest.approx([2 * v for v in val], rel=1e-6)
