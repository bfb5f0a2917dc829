"""Every point a run logged survives a kill and a resume.

A run is killed with SIGKILL in a child process (right after a checkpoint, or mid-epoch between two
checkpoints), or left to finish, and then resumed; every scalar tag read back with TensorBoard's
EventAccumulator has the steps of the uninterrupted run. Plain training, a GPT, and fine-tunes with
gradual unfreezing and with LoRA (whose views come from a callback of their own) are covered.
"""

import json
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from collections import Counter

import pytest

import zerotune
from zerotune.config import load_config
from zerotune.finetune import finetune

CHILD = textwrap.dedent("""
    import json, os, signal, sys, time
    from pathlib import Path
    import zerotune
    from zerotune.config import load_config
    from zerotune.finetune import finetune
    from zerotune.train.callbacks import Callback
    from zerotune.train.checkpoint import find_checkpoint, read_state

    spec = json.loads(sys.argv[1])

    def saved_step(run_dir):
        found = find_checkpoint(Path(run_dir) / "checkpoints" / "last")
        try:
            return read_state(found)["progress"]["step"] if found else None
        except (OSError, ValueError, KeyError):
            return None

    class KillAt(Callback):
        def on_step_end(self, state):
            if state.step != spec["kill"]:
                return
            # checkpoints are written in the background: wait until the one asked for is on disk
            deadline = time.monotonic() + 60
            while spec["after"] and saved_step(spec["run_dir"]) != spec["after"] and time.monotonic() < deadline:
                time.sleep(0.01)
            os.kill(os.getpid(), signal.SIGKILL)

    if spec["strategy"]:
        finetune(None, source=spec["source"], strategy=spec["strategy"], overrides=spec["overrides"],
                 callbacks=[KillAt()])
    else:
        zerotune.train(load_config(None, spec["overrides"]), callbacks=[KillAt()])
""")

# Sampled by wall clock (at each drain of the writer thread), so never the same steps twice.
CLOCKED = re.compile(r"perf/.*memory_mb")

# Every kind: 10 (5 for the fine-tunes) steps per epoch, 30 steps, a checkpoint every 4 steps
# (not at epoch ends), an evaluation per epoch. Layer statistics every 3 steps: the update ratio at
# step 9 needs a copy of the weights of step 8, the checkpoint a kill at 9 resumes from.
LOG = ["train.threads=1", "train.deterministic=true", "train.checkpoint_every_steps=4",
       "train.checkpoint_every_seconds=1e6", "log.progress=false",
       "log.graph=false", "log.embeddings=false", "log.images=false", "log.layer_stats_every=3",
       "log.histograms_every=5", "log.views_min_seconds=0", "log.figures_every=0", "log.pr_curves_every=0",
       "log.worst_every=0", "log.predictions_every=0"]
SMALL_CNN = ["data.name=digits", "model.name=cnn", "model.channels=[4,8]", "model.dense=16", "data.train_per_class=20",
             "train.batch_size=20"]
TEXT = "the cat sees the dog. a dog likes the moon. the bird follows a cat.\n" * 60

KINDS = {
    "plain": (None, SMALL_CNN + ["train.epochs=3"]),
    "gpt": (None, ["data.name=corpus", "data.block_size=16", "data.windows_per_epoch=160", "data.eval_windows=32",
                   "model.name=gpt", "model.n_layer=1", "model.n_head=2", "model.n_embd=16", "train.batch_size=16",
                   "train.epochs=3", "log.sample_tokens=8", "log.attention_maps=false"]),
    "gradual": ("gradual", SMALL_CNN + ["data.classes=[5,6,7,8,9]", "train.epochs=6", "finetune.unfreeze_every=1",
                                        "finetune.lr_decay=0.5"]),
    "lora": ("lora", SMALL_CNN + ["data.classes=[5,6,7,8,9]", "train.epochs=6", "finetune.lora_rank=2"]),
}
# (kill at step, checkpoint it resumes from): right after a checkpoint; mid-epoch, six steps after one
# and after an evaluation that the killed run logged (epoch end at 20).
KILLS = {"after_checkpoint": (9, 8), "mid_epoch": (22, 16)}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume_curves")
    (root / "text.txt").write_text(TEXT, encoding="utf-8")
    zerotune.train(load_config(None, SMALL_CNN + LOG + ["data.classes=[0,1,2,3,4]", "train.epochs=1",
                                                        f"log.dir={root}", "log.name=parent"]))
    return root


def _overrides(root, kind, name):
    extra = [f"data.path={root / 'text.txt'}", f"data.cache_dir={root / 'cache'}"] if kind == "gpt" else []
    return KINDS[kind][1] + LOG + extra + [f"log.dir={root / 'runs'}", f"log.name={name}"]


def _run(root, kind, name, callbacks=()):
    strategy, _ = KINDS[kind]
    if strategy:
        return finetune(None, source=str(root / "parent"), strategy=strategy, overrides=_overrides(root, kind, name),
                        callbacks=list(callbacks))
    return zerotune.train(load_config(None, _overrides(root, kind, name)), callbacks=list(callbacks))


_references = {}


def _reference(root, kind, read_events):
    if kind not in _references:
        run_dir = _run(root, kind, f"{kind}-whole").run_dir
        _references[kind] = (run_dir, _steps(run_dir, read_events))
    return _references[kind]


def _steps(run_dir, read_events) -> dict[str, Counter]:
    """tag -> how many points at each step, for every scalar tag."""
    acc = read_events(run_dir)
    return {tag: Counter(e.step for e in acc.Scalars(tag)) for tag in acc.Tags()["scalars"] if not CLOCKED.match(tag)}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("kill", list(KILLS))
def test_a_killed_run_resumed_keeps_every_point(root, kind, kill, read_events):
    _, reference = _reference(root, kind, read_events)
    name = f"{kind}-{kill}"
    step, after = KILLS[kill]
    spec = {"strategy": KINDS[kind][0], "source": str(root / "parent"), "overrides": _overrides(root, kind, name),
            "kill": step, "after": after, "run_dir": str(root / "runs" / name)}
    child = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], capture_output=True, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr
    resumed = zerotune.train(None, resume=root / "runs" / name)
    assert resumed.steps == 30
    got = _steps(resumed.run_dir, read_events)
    assert got.keys() == reference.keys()
    for tag in reference:  # the same points, each once
        assert got[tag] == reference[tag], tag
    assert "train/loss" in got and "val/loss" in got
    if KINDS[kind][0]:
        assert len(got["finetune/params_trainable"]) > 5 and "compare/after/test/accuracy" in got


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_finished_run_resumed_keeps_every_point(root, kind, read_events):
    whole, reference = _reference(root, kind, read_events)
    copy = shutil.copytree(whole, root / "runs" / f"{kind}-finished")
    resumed = zerotune.train(None, resume=copy)
    assert resumed.steps == 30
    got = _steps(copy, read_events)
    assert got.keys() == reference.keys()
    for tag in reference:  # the end of the run (run/seconds, compare/...) is written again, at the same step
        assert got[tag].keys() == reference[tag].keys(), tag
    assert 30 in got["val/loss"]
