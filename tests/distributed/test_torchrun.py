"""`torchrun --nproc-per-node 2 -m zerotune train ...` is the same job as `zerotune train --nproc 2`."""

import json
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def test_torchrun_starts_the_same_job(tmp_path):
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "zerotune",
           "train", "--runs-dir", str(tmp_path), "--name", "tr", "--no-progress", "--set", "data.name=iris",
           "--set", "model.name=mlp", "--set", "train.epochs=3", "--set", "train.batch_size=16",
           "--set", "log.tensorboard=false"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("run: ") == 1  # rank 0 alone prints the summary
    assert [p.name for p in tmp_path.iterdir()] == ["tr"]
    metrics = json.loads((tmp_path / "tr" / "metrics.json").read_text())
    assert metrics["training"]["steps"] == 3 * 7  # 105 training rows in global batches of 16
