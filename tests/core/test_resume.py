"""A run killed with SIGKILL mid-training and resumed ends with the same weights as an uninterrupted one."""

import json
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file

import zerotune
from zerotune.config import load_config
from zerotune.errors import UserError

SETTINGS = [
    "data.name=digits", "model.name=mlp", "model.hidden=[64]", "model.dropout=0.2", "model.batch_norm=true",
    "data.augment.noise_std=0.1", "optim.name=adamw", "optim.weight_decay=0.01", "schedule.name=cosine",
    "schedule.warmup_steps=10", "train.epochs=4", "train.batch_size=64", "train.accumulate=2",
    "train.deterministic=true", "train.threads=1", "train.checkpoint_every_steps=3",
    "train.early_stopping={patience: 50}", "log.progress=false",
]
# The same run with the plateau schedule (every evaluation after the first stalls, relative threshold
# 0.5, and lowers the rate: the resumed run must restore the schedule's state to match), zoom,
# brightness and contrast jitter, and batches mixed by mixup or cutmix.
PLATEAU = [s for s in SETTINGS if not s.startswith("schedule.")] + [
    "schedule.name=plateau", "schedule.patience=0", "schedule.factor=0.5", "schedule.threshold=0.5",
    "data.augment.scale=0.1", "data.augment.brightness=0.2", "data.augment.contrast=0.2",
    "data.augment.mixup_alpha=0.4", "data.augment.cutmix_alpha=1.0", "data.augment.mix_prob=0.8"]
KILL_AT = 25  # mid-epoch (10 optimizer steps per epoch), after the checkpoint at step 24

CHILD = textwrap.dedent("""
    import os, signal, sys
    import zerotune
    from zerotune.config import load_config
    from zerotune.train.callbacks import Callback

    class KillAt(Callback):
        def on_step_end(self, state):
            if state.step == int(sys.argv[2]):
                os.kill(os.getpid(), signal.SIGKILL)

    cfg = load_config(None, sys.argv[3:] + ["log.dir=" + sys.argv[1], "log.name=killed"])
    zerotune.train(cfg, callbacks=[KillAt()])
""")


def _weights(run_dir):
    return load_file(str(run_dir / "checkpoints" / "last" / "model.safetensors"))


@pytest.mark.parametrize("settings", [SETTINGS, PLATEAU], ids=["cosine", "plateau-mixing"])
def test_sigkilled_run_resumes_to_identical_weights(runs_dir, settings):
    reference = zerotune.train(load_config(None, settings + [f"log.dir={runs_dir}", "log.name=reference"]))

    child = subprocess.run([sys.executable, "-c", CHILD, str(runs_dir), str(KILL_AT), *settings],
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr
    killed = runs_dir / "killed"
    assert not (killed / "metrics.json").exists()
    from zerotune.train.checkpoint import find_checkpoint  # also finds one caught between its two renames

    state = json.loads((find_checkpoint(killed / "checkpoints" / "last") / "state.json").read_text())
    # Checkpoints are written in the background: the kill at step 25 may land while step 24's is written.
    progress = state["progress"]
    assert (progress["step"], progress["batch_in_epoch"]) in ((21, 2), (24, 8))
    if "schedule.name=plateau" in settings:  # two evaluations before the kill: the rate was halved once
        assert state["schedule"] == {"best": pytest.approx(state["schedule"]["best"]), "bad": 0, "multiplier": 0.5}

    resumed = zerotune.train(None, resume=killed)
    assert resumed.steps == reference.steps == 40
    ref_w, res_w = _weights(reference.run_dir), _weights(killed)
    assert ref_w.keys() == res_w.keys()
    for k in ref_w:
        assert torch.equal(ref_w[k], res_w[k]), k
    assert resumed.metrics["test"]["accuracy"] == reference.metrics["test"]["accuracy"]


def test_resume_refuses_changes_that_break_exact_continuation(runs_dir):
    cfg = load_config(None, ["data.name=iris", "model.name=logistic_regression", "train.epochs=2",
                             "log.progress=false", f"log.dir={runs_dir}", "log.name=r"])
    first = zerotune.train(cfg)
    with pytest.raises(UserError, match="cannot change on resume; allowed: train.epochs"):
        zerotune.train(None, resume=first.run_dir, resume_overrides=["optim.lr=1"])
    longer = zerotune.train(None, resume=first.run_dir, resume_overrides=["train.epochs=4"])
    assert longer.steps == 2 * first.steps
    assert "epochs: 4" in (first.run_dir / "config.yaml").read_text()


def test_resume_of_a_directory_without_checkpoint(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        zerotune.train(None, resume=tmp_path / "nope")
