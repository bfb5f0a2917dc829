"""`zerotune finetune --nproc 2`: a gradual fine-tune (parameters unfreezing as it goes) under DDP, and
under FSDP (parameter groups and freezing on sharded parameters)."""

import contextlib
import io
import json

import pytest

from zerotune.cli.main import main


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_gradual_finetune_in_two_ranks(cnn_run, runs_dir, strategy):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["finetune", "--from", str(cnn_run), "--strategy", "gradual", "--nproc", "2", "--runs-dir",
                     str(runs_dir), "--name", "ft", "--no-progress", "--set", "train.epochs=3",
                     "--set", "log.graph=false", "--set", "log.embeddings=false", "--set", "train.threads=1",
                     "--set", f"train.distributed.strategy={strategy}"])
    assert code == 0, err.getvalue()
    assert [p.name for p in runs_dir.iterdir()] == ["ft"]
    metrics = json.loads((runs_dir / "ft" / "metrics.json").read_text())
    stages = metrics["finetune"]["stages"]
    assert [s["epoch"] for s in stages] == [0, 1, 2] and stages[0]["trainable"] < stages[-1]["trainable"]
    assert metrics["training"]["epochs"] == 3
    assert metrics["finetune"]["after"]["test/accuracy"] > 0.5
