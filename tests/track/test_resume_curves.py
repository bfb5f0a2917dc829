"""The kill-test matrix: a run killed with SIGKILL and resumed ends exactly as the uninterrupted run.

A run is killed in a child process (before its first checkpoint, right after a checkpoint, or
mid-epoch between two checkpoints), or left to finish, and then resumed. Then its final weights
(`last` and `best`), the random generators' state in `last`, every TensorBoard scalar (tag, step and
value, read back with TensorBoard's EventAccumulator) and metrics.json (times aside) equal the
uninterrupted run's. Covered: a CNN, a GPT with dropout, fine-tunes with gradual unfreezing and with
LoRA (whose views come from a callback of their own), and LoRA instruction tuning of a GPT.
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
import torch
from safetensors.torch import load_file

import zerotune
from zerotune.config import load_config
from zerotune.pipeline.finetune import finetune
from zerotune.track import events

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the kills fork processes (POSIX only)")

# One child process imports everything once, then forks a process per run, which kills itself
# with SIGKILL at its step (a fresh interpreter per kill would spend most of the test importing).
CHILD = textwrap.dedent("""
    import json, os, signal, sys, time
    from pathlib import Path
    import zerotune
    from zerotune.config import load_config
    from zerotune.pipeline.finetune import finetune
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
# Measured by the clock: their values differ from run to run, interrupted or not.
TIMED = re.compile(r"perf/|run/seconds|.*tokens_per_sec")

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
CHAT = "".join(f"User: What is {a}+{b}?\nAssistant: {a + b}\n" for a in range(10) for b in range(10)) * 2
SFT = [{"prompt": f"What is {a}+{b}?", "response": str(a + b)} for a in range(10) for b in range(10)]
GPT = ["data.block_size=16", "model.name=gpt", "model.n_layer=1", "model.n_head=2", "model.n_embd=16"]

KINDS = {  # kind: (fine-tune strategy, source run, overrides)
    # figures due at every evaluation but drawn at most every 1000 s: the ROC AUC scalar is not held back
    "plain": (None, None, SMALL_CNN + ["train.epochs=3", "log.figures_every=1", "log.views_min_seconds=1000"]),
    "gpt": (None, None, ["data.name=corpus", *GPT, "data.windows_per_epoch=160", "data.eval_windows=32",
                         "model.dropout=0.1", "train.batch_size=16", "train.epochs=3", "log.sample_tokens=8",
                         "log.attention_maps=false"]),
    "gradual": ("gradual", "parent", SMALL_CNN + ["data.classes=[5,6,7,8,9]", "train.epochs=6",
                                                  "finetune.unfreeze_every=1", "finetune.lr_decay=0.5"]),
    "lora": ("lora", "parent", SMALL_CNN + ["data.classes=[5,6,7,8,9]", "train.epochs=6", "finetune.lora_rank=2"]),
    # 80 training records of 100 in batches of 8: 10 steps an epoch; dropout 0.1 under the adapters
    "sft": ("lora", "chat-gpt", ["data.name=sft", "data.max_length=48", "data.val_fraction=0.1",
                                 "data.test_fraction=0.1", "train.batch_size=8", "train.epochs=3",
                                 "model.dropout=0.1", "sft.eval_prompts=2", "sft.max_new_tokens=3",
                                 "finetune.baseline=false"]),
}
# (kill at step, checkpoint it resumes from): before the first checkpoint (the run starts again);
# right after a checkpoint; mid-epoch, six steps after one and after an evaluation that the killed
# run logged (epoch end at 20).
KILLS = {"before_checkpoint": (3, None), "after_checkpoint": (9, 8), "mid_epoch": (22, 16)}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume_curves")
    (root / "text.txt").write_text(TEXT, encoding="utf-8")
    (root / "chat.txt").write_text(CHAT, encoding="utf-8")
    (root / "sft.jsonl").write_text("".join(json.dumps(r) + "\n" for r in SFT), encoding="utf-8")
    zerotune.train(load_config(None, SMALL_CNN + LOG + ["data.classes=[0,1,2,3,4]", "train.epochs=1",
                                                        f"log.dir={root}", "log.name=parent"]))
    zerotune.train(load_config(None, ["data.name=corpus", "data.tokenizer=char", *GPT, f"data.path={root / 'chat.txt'}",
                                      f"data.cache_dir={root / 'cache'}", "data.windows_per_epoch=160", "data.block_size=48",
                                      "train.batch_size=16", "train.epochs=1", "log.progress=false",
                                      "log.tensorboard=false", f"log.dir={root}", "log.name=chat-gpt"]))
    return root


@pytest.fixture(scope="module")
def killed(root):
    """Every kind killed at every point: run directory -> the signal that ended its process."""
    specs = []
    for kind, (strategy, source, _) in KINDS.items():
        for kill, (step, after) in KILLS.items():
            name = f"{kind}-{kill}"
            specs.append({"strategy": strategy, "source": str(root / (source or "")), "kill": step, "after": after,
                          "overrides": _overrides(root, kind, name), "run_dir": str(root / "runs" / name)})
    child = subprocess.run([sys.executable, "-c", CHILD, json.dumps(specs)], capture_output=True, text=True,
                           timeout=600)
    assert child.returncode == 0, child.stderr
    return json.loads(child.stdout.strip().splitlines()[-1])


def _overrides(root, kind, name):
    extra = {"gpt": [f"data.path={root / 'text.txt'}", f"data.cache_dir={root / 'cache'}"],
             "sft": [f"data.path={root / 'sft.jsonl'}"]}.get(kind, [])
    return LOG + KINDS[kind][2] + extra + [f"log.dir={root / 'runs'}", f"log.name={name}"]


@pytest.fixture(scope="module")
def reference(root, read_events):
    """``reference(kind)``: the uninterrupted run's directory, tag steps and scalar values, trained and read
    on first use (each of the 20 tests compares with one of 5 runs: read once, not once per test)."""
    made = {}

    def get(kind):
        if kind not in made:
            strategy, source, _ = KINDS[kind]
            overrides = _overrides(root, kind, f"{kind}-whole")
            if strategy:
                run_dir = finetune(None, source=str(root / source), strategy=strategy, overrides=overrides).run_dir
            else:
                run_dir = zerotune.train(load_config(None, overrides)).run_dir
            made[kind] = (run_dir, *_scalars(run_dir, read_events))
        return made[kind]

    return get


def _scalars(run_dir, read_events) -> tuple[dict[str, Counter], dict[str, list]]:
    """A run's events read once: (tag -> how many points at each step, for every scalar tag; `zerotune runs`
    and `report` read the same) and (tag -> its (step, value) points, for every scalar tag the clock does not set)."""
    acc = read_events(run_dir)
    steps = {tag: Counter(e.step for e in acc.Scalars(tag)) for tag in acc.Tags()["scalars"] if not CLOCKED.match(tag)}
    ours = {tag: Counter(s for s, _ in points) for tag, points in events.read_run_events(run_dir).scalars.items()
            if not CLOCKED.match(tag)}
    assert ours == steps
    values = {tag: sorted((e.step, e.value) for e in acc.Scalars(tag)) for tag in acc.Tags()["scalars"]
              if not TIMED.match(tag)}
    return steps, values


def _tensors(run_dir, checkpoint: str, file: str) -> dict:
    return load_file(str(run_dir / "checkpoints" / checkpoint / file))


def _timeless(metrics):
    """metrics.json without what the clock measured."""
    if isinstance(metrics, dict):
        return {k: _timeless(v) for k, v in metrics.items() if not TIMED.match(k) and "seconds" not in k}
    return metrics


def assert_same_end(got_dir, expected_dir, got: dict, expected: dict) -> None:
    """Weights, random generators, TensorBoard scalars (``got``, ``expected``: `_scalars`' values) and
    metrics.json as the uninterrupted run's."""
    for checkpoint in ("last", "best"):
        a, b = _tensors(got_dir, checkpoint, "model.safetensors"), _tensors(expected_dir, checkpoint, "model.safetensors")
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), (checkpoint, k)
    rng = lambda d: {k: v for k, v in _tensors(d, "last", "optimizer.safetensors").items() if k.startswith("rng.")}  # noqa: E731
    a, b = rng(got_dir), rng(expected_dir)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    state = lambda d: json.loads((d / "checkpoints" / "last" / "state.json").read_text())  # noqa: E731
    assert state(got_dir)["rng"] == state(expected_dir)["rng"]
    assert got.keys() == expected.keys()
    for tag in expected:
        assert got[tag] == expected[tag], tag
    metrics = lambda d: _timeless(json.loads((d / "metrics.json").read_text()))  # noqa: E731
    assert metrics(got_dir) == metrics(expected_dir)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("kill", list(KILLS))
def test_a_killed_run_resumed_keeps_every_point(root, killed, reference, kind, kill, read_events):
    whole, expected, values = reference(kind)
    name = f"{kind}-{kill}"
    assert killed[str(root / "runs" / name)] == signal.SIGKILL
    resumed = zerotune.train(None, resume=root / "runs" / name)
    assert resumed.steps == 30
    got, got_values = _scalars(resumed.run_dir, read_events)
    assert got.keys() == expected.keys()
    for tag in expected:  # the same points, each once
        assert got[tag] == expected[tag], tag
    assert "train/loss" in got and "val/loss" in got
    if kind == "plain":
        assert set(got["val/roc_auc"]) == {10, 20, 30}
    if KINDS[kind][0] and kind != "sft":
        assert len(got["finetune/params_trainable"]) > 5 and "compare/after/test/accuracy" in got
    assert_same_end(resumed.run_dir, whole, got_values, values)


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_finished_run_resumed_keeps_every_point(root, reference, kind, read_events):
    whole, expected, values = reference(kind)
    copy = shutil.copytree(whole, root / "runs" / f"{kind}-finished")
    files = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    resumed = zerotune.train(None, resume=copy)
    assert {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()} == files  # nothing written again
    assert resumed.steps == 30
    got, got_values = _scalars(copy, read_events)
    assert got.keys() == expected.keys()
    for tag in expected:  # the same points, each once: a finished run is not written again
        assert got[tag] == expected[tag], tag
    assert 30 in got["val/loss"]
    assert_same_end(copy, whole, got_values, values)
