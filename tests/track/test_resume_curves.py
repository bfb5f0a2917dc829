"""Every point a run logged survives a kill and a resume.

A run is killed with SIGKILL in a child process (right after a checkpoint, or mid-epoch between two
checkpoints), or left to finish, and then resumed; every scalar tag read back with TensorBoard's
EventAccumulator has the steps of the uninterrupted run. Plain training, a GPT, and fine-tunes with
gradual unfreezing and with LoRA (whose views come from a callback of their own) are covered.
"""

import json
import os
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
from zerotune.track import events

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the kills fork processes (POSIX only)")

# One child process imports everything once, then forks a process per run, which kills itself
# with SIGKILL at its step (a fresh interpreter per kill would spend most of the test importing).
CHILD = textwrap.dedent("""
    import json, os, signal, sys, time
    from pathlib import Path
    import zerotune
    from zerotune.config import load_config
    from zerotune.finetune import finetune
    from zerotune.train.callbacks import Callback
    from zerotune.train.checkpoint import find_checkpoint, read_state
    # what a run imports lazily, imported once here rather than in every forked process
    import sklearn.datasets, tensorboardX, torch._inductor.config
    import zerotune.finetune.baseline, zerotune.finetune.board, zerotune.finetune.setup, zerotune.models.gpt
    import zerotune.track.lm_board

    def saved_step(run_dir):
        found = find_checkpoint(Path(run_dir) / "checkpoints" / "last")
        try:
            return read_state(found)["progress"]["step"] if found else None
        except (OSError, ValueError, KeyError):
            return None

    class KillAt(Callback):
        def __init__(self, spec):
            self.spec = spec

        def on_step_end(self, state):
            if state.step != self.spec["kill"]:
                return
            # checkpoints are written in the background: wait until the one asked for is on disk
            deadline = time.monotonic() + 60
            while saved_step(self.spec["run_dir"]) != self.spec["after"] and time.monotonic() < deadline:
                time.sleep(0.01)
            os.kill(os.getpid(), signal.SIGKILL)

    def run(spec):
        if spec["strategy"]:
            finetune(None, source=spec["source"], strategy=spec["strategy"], overrides=spec["overrides"],
                     callbacks=[KillAt(spec)])
        else:
            zerotune.train(load_config(None, spec["overrides"]), callbacks=[KillAt(spec)])

    signals = {}
    for spec in json.loads(sys.argv[1]):
        pid = os.fork()
        if pid == 0:
            try:
                run(spec)
            finally:
                os._exit(1)  # not killed: the run ended or failed
        signals[spec["run_dir"]] = os.WTERMSIG(os.waitpid(pid, 0)[1])
    print(json.dumps(signals))
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


@pytest.fixture(scope="module")
def killed(root):
    """Every kind killed at every point: run directory -> the signal that ended its process."""
    specs = []
    for kind, (strategy, _) in KINDS.items():
        for kill, (step, after) in KILLS.items():
            name = f"{kind}-{kill}"
            specs.append({"strategy": strategy, "source": str(root / "parent"), "kill": step, "after": after,
                          "overrides": _overrides(root, kind, name), "run_dir": str(root / "runs" / name)})
    child = subprocess.run([sys.executable, "-c", CHILD, json.dumps(specs)], capture_output=True, text=True,
                           timeout=600)
    assert child.returncode == 0, child.stderr
    return json.loads(child.stdout.strip().splitlines()[-1])


def _overrides(root, kind, name):
    extra = [f"data.path={root / 'text.txt'}", f"data.cache_dir={root / 'cache'}"] if kind == "gpt" else []
    return KINDS[kind][1] + LOG + extra + [f"log.dir={root / 'runs'}", f"log.name={name}"]


@pytest.fixture(scope="module")
def reference(root, read_events):
    """``reference(kind)``: the uninterrupted run's directory and tag steps, trained on first use."""
    made = {}

    def get(kind):
        if kind not in made:
            strategy, _ = KINDS[kind]
            overrides = _overrides(root, kind, f"{kind}-whole")
            if strategy:
                run_dir = finetune(None, source=str(root / "parent"), strategy=strategy, overrides=overrides).run_dir
            else:
                run_dir = zerotune.train(load_config(None, overrides)).run_dir
            made[kind] = (run_dir, _steps(run_dir, read_events))
        return made[kind]

    return get


def _steps(run_dir, read_events) -> dict[str, Counter]:
    """tag -> how many points at each step, for every scalar tag; `zerotune runs` and `report` read the same."""
    acc = read_events(run_dir)
    steps = {tag: Counter(e.step for e in acc.Scalars(tag)) for tag in acc.Tags()["scalars"] if not CLOCKED.match(tag)}
    ours = {tag: Counter(s for s, _ in points) for tag, points in events.read_run_events(run_dir).scalars.items()
            if not CLOCKED.match(tag)}
    assert ours == steps
    return steps


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("kill", list(KILLS))
def test_a_killed_run_resumed_keeps_every_point(root, killed, reference, kind, kill, read_events):
    _, expected = reference(kind)
    name = f"{kind}-{kill}"
    assert killed[str(root / "runs" / name)] == signal.SIGKILL
    resumed = zerotune.train(None, resume=root / "runs" / name)
    assert resumed.steps == 30
    got = _steps(resumed.run_dir, read_events)
    assert got.keys() == expected.keys()
    for tag in expected:  # the same points, each once
        assert got[tag] == expected[tag], tag
    assert "train/loss" in got and "val/loss" in got
    if KINDS[kind][0]:
        assert len(got["finetune/params_trainable"]) > 5 and "compare/after/test/accuracy" in got


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_finished_run_resumed_keeps_every_point(root, reference, kind, read_events):
    whole, expected = reference(kind)
    copy = shutil.copytree(whole, root / "runs" / f"{kind}-finished")
    resumed = zerotune.train(None, resume=copy)
    assert resumed.steps == 30
    got = _steps(copy, read_events)
    assert got.keys() == expected.keys()
    for tag in expected:  # the end of the run (run/seconds, compare/...) is written again, at the same step
        assert got[tag].keys() == expected[tag].keys(), tag
    assert 30 in got["val/loss"]
