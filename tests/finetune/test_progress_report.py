"""What a gradual fine-tune reports: the parameters that train at the start and at each stage, in its
printed summary, finetune.json, metrics.json and TensorBoard; and one plain line per evaluation outside
a terminal."""

import json
import os
import subprocess
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

HEAD = 32 * 5 + 5  # dense 32 -> 5 new classes


def test_gradual_unfreezing_reports_what_trains_at_each_stage(parent_run, tmp_path, target):
    sets = [a for o in target + ["train.epochs=4", "finetune.unfreeze_every=1", "finetune.baseline=false"]
            for a in ("--set", o)]
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR", "TTY_INTERACTIVE")}
    proc = subprocess.run([sys.executable, "-m", "zerotune", "finetune", "--from", str(parent_run), "--strategy",
                           "gradual", "--runs-dir", str(tmp_path), "--name", "gradual", *sets, "--set",
                           "log.progress=true"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "gradual"
    saved = json.loads((run / "finetune.json").read_text())
    total = saved["parameters"]
    stages = saved["stages"]
    assert saved["trainable"] == HEAD and stages[0] == {
        "epoch": 0, "trainable": HEAD, "trainable_percent": round(100 * HEAD / total, 4)}
    counts = [s["trainable"] for s in stages]
    assert [s["epoch"] for s in stages] == [0, 1, 2, 3] and counts == sorted(counts) and counts[-1] == total
    assert json.loads((run / "metrics.json").read_text())["finetune"]["stages"] == stages

    lines = proc.stdout.splitlines()
    assert f"strategy gradual: {HEAD:,} of {total:,} parameters trainable at the start " \
           f"({100 * HEAD / total:.2f}%), {counts[1]:,}" in proc.stdout
    assert f", {total:,} (100.00%) from epoch 3, head new" in proc.stdout
    evals = [line for line in lines if line.startswith("step ")]
    assert [line.split()[1] for line in evals] == ["5/20", "10/20", "15/20", "20/20"]
    assert all("train/loss " in line and "val/loss " in line and "best val/loss " in line for line in evals)

    acc = EventAccumulator(str(run), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    trainable = {e.step: e.value for e in acc.Scalars("finetune/params_trainable")}
    for s in stages:  # 5 steps per epoch: the count of each stage from its first step on
        assert trainable[s["epoch"] * 5 + 1] == s["trainable"]
    texts = {e.step: e.tensor_proto.string_val[0].decode() for e in acc.Tensors("finetune/unfrozen/text_summary")}
    assert sorted(texts) == [1, 6, 11, 16]
    assert texts[1] == f"epoch 0: {HEAD:,} of {total:,} parameters train ({100 * HEAD / total:.2f}%): head"
    for s in stages[1:]:
        assert texts[s["epoch"] * 5 + 1].endswith(
            f"unfrozen; {s['trainable']:,} of {total:,} parameters train ({s['trainable_percent']:.2f}%)")
