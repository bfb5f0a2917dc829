"""Packed instruction tuning (`sft.packing`) killed mid-epoch with SIGKILL and resumed ends exactly as the
uninterrupted packed run: the same weights (`last` and `best`), bit for bit, and the same TensorBoard scalars."""

import json
import os
import re
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file

import zerotune
from zerotune.config import load_config
from zerotune.data import packing
from zerotune.data.packing import pack
from zerotune.train.checkpoint import find_checkpoint, read_state

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="the run is killed with SIGKILL (POSIX only)")

# The killed run: a fresh process (the test's own may hold OpenMP threads that a fork would not carry),
# killed at step `kill` once the checkpoint of step `after` is on disk (checkpoints are written in the background).
CHILD = textwrap.dedent("""
    import json, os, signal, sys, time
    from pathlib import Path
    import zerotune
    from zerotune.config import load_config
    from zerotune.train.callbacks import Callback
    from zerotune.train.checkpoint import find_checkpoint, read_state

    spec = json.loads(sys.argv[1])

    def saved_step():
        found = find_checkpoint(Path(spec["run_dir"]) / "checkpoints" / "last")
        try:
            return read_state(found)["progress"]["step"] if found else None
        except (OSError, ValueError, KeyError):
            return None

    class KillAt(Callback):
        def on_step_end(self, state):
            if state.step == spec["kill"]:
                deadline = time.monotonic() + 60
                while saved_step() != spec["after"] and time.monotonic() < deadline:
                    time.sleep(0.01)
                os.kill(os.getpid(), signal.SIGKILL)

    zerotune.train(load_config(None, spec["overrides"]), callbacks=[KillAt()])
""")

# 80 training records in batches of 8: 10 steps an epoch, 20 in all; a checkpoint every 4 steps, an
# evaluation per epoch; killed at step 14, mid-epoch, two steps after the checkpoint of step 12 and after
# the evaluation of step 10. Layer statistics and histograms at steps the kill falls between.
PACKED = ["data.name=sft", "data.max_length=32", "data.val_fraction=0.1", "data.test_fraction=0.1",
          "train.batch_size=8", "train.epochs=2", "train.threads=1", "train.deterministic=true",
          "train.checkpoint_every_steps=4", "train.checkpoint_every_seconds=1e6", "finetune.strategy=lora",
          "finetune.lora_dropout=0.1", "finetune.baseline=false", "sft.packing=true", "sft.eval_prompts=2",
          "sft.max_new_tokens=3", "log.progress=false", "log.layer_stats_every=3", "log.histograms_every=5",
          "log.views_min_seconds=0"]
KILL, AFTER = 14, 12
TIMED = re.compile(r"perf/|run/seconds|.*tokens_per_sec")  # set by the clock, interrupted or not


def _overrides(tmp_path, tiny_lms, sft_file, name):
    return [*PACKED, f"finetune.source={tiny_lms['llama']}", f"data.path={sft_file}", f"log.dir={tmp_path}",
            f"log.name={name}"]


def _scalars(run_dir, read_events) -> dict[str, list]:
    acc = read_events(run_dir)
    return {tag: sorted((e.step, e.value) for e in acc.Scalars(tag)) for tag in acc.Tags()["scalars"]
            if not TIMED.match(tag)}


def test_a_packed_run_killed_mid_epoch_resumes_exactly(tmp_path, tiny_lms, sft_file, read_events, monkeypatch):
    spec = {"overrides": _overrides(tmp_path, tiny_lms, sft_file, "killed"), "kill": KILL, "after": AFTER,
            "run_dir": str(tmp_path / "killed")}
    child = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], capture_output=True, text=True,
                           timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert read_state(find_checkpoint(tmp_path / "killed" / "checkpoints" / "last"))["progress"]["step"] == AFTER
    packed = []  # the batches packed: the run trains on packed rows, not on the padded batches
    monkeypatch.setattr(packing, "pack", lambda *a: packed.append(1) or pack(*a))
    whole = zerotune.train(load_config(None, _overrides(tmp_path, tiny_lms, sft_file, "whole"))).run_dir
    assert len(packed) >= 20  # every step's batch (the trainer reads each twice: once to count its answer tokens)
    resumed = zerotune.train(None, resume=tmp_path / "killed")
    assert resumed.steps == 20
    for checkpoint in ("last", "best"):
        a, b = (load_file(str(d / "checkpoints" / checkpoint / "model.safetensors")) for d in (resumed.run_dir, whole))
        assert a.keys() == b.keys() and any("lora_" in k for k in a)
        for k in a:
            assert torch.equal(a[k], b[k]), (checkpoint, k)
    got, expected = _scalars(resumed.run_dir, read_events), _scalars(whole, read_events)
    assert got.keys() == expected.keys() and {"train/loss", "val/loss", "val/exact_match"} <= got.keys()
    for tag in expected:
        assert got[tag] == expected[tag], tag
