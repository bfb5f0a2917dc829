"""Two gloo ranks train as one process would, into one run directory, and survive a killed rank.

Each test starts real worker processes through the elastic agent (`zerotune train --nproc 2`).
"""

import contextlib
import io
import json
import shutil
import textwrap

import pytest
import torch
from safetensors.torch import load_file

import zerotune
from zerotune.cli.main import main
from zerotune.config import load_config

# The drawn views (matplotlib figures, image grids), which nothing here reads: ~1 s of rank 0's CPU a run.
VIEWS_OFF = ["log.images=false", "log.worst_every=0", "log.figures_every=0", "log.pr_curves_every=0",
             "log.predictions_every=0"]

# No dropout, no batch norm, no augmentation: then 2 ranks of 8 and 1 process of 16 take the same steps.
# 69 training examples in batches of 16: each epoch ends with a batch of 5 that the ranks split 3/2, and
# with accumulate=2, a step of one micro-batch; 3 steps an epoch, 20 steps in 7 epochs.
SETTINGS = ["data.name=digits", "data.classes=[0, 1, 2]", "data.train_per_class=23", "model.name=mlp",
            "model.hidden=[32]", "optim.lr=0.01", "train.batch_size=16", "train.accumulate=2", "train.epochs=7",
            "train.max_steps=20", "train.threads=1", "train.deterministic=true", "train.checkpoint_every_steps=5",
            "log.progress=false", "log.graph=false", "log.embeddings=false", "log.histograms_every=0",
            *VIEWS_OFF]

KILL = textwrap.dedent("""
    import os, signal, sys
    import zerotune
    from zerotune.config import load_config
    from zerotune.distributed.launch import end_process
    from zerotune.train.loop import Trainer

    step = Trainer.step

    def step_then_die(self, batches):  # rank 1 dies after step 12 (callbacks run on rank 0 only)
        step(self, batches)
        if self.state.step == 12 and os.environ["RANK"] == "1":
            with open(os.environ.get("KILL_RECORD", os.devnull), "a") as f:  # the test sees the kill happen
                f.write("killed\\n")
            os.kill(os.getpid(), signal.SIGKILL)

    Trainer.step = step_then_die
    try:
        zerotune.train(load_config(None, sys.argv[1:]))
    except Exception:  # rank 0 loses rank 1: it fails as the command line does, without finalizing
        import traceback
        traceback.print_exc()
        end_process(1)
    end_process(0)
""")

# The same through the command line, rank 1 dying in the first attempt only: the agent restarts the job.
DIE_ONCE = KILL.replace('os.environ["RANK"] == "1"', 'os.environ["RANK"] == "1" and os.environ["TORCHELASTIC_RESTART_COUNT"] == "0"'
                        ).replace("zerotune.train(load_config(None, sys.argv[1:]))",
                                  "from zerotune.cli.main import main; end_process(main(sys.argv[1:]))")


def _train(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["train", *args])
    return code, out.getvalue(), err.getvalue()


def _sets(*overrides: str) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def _weights(run_dir, name="last"):
    return load_file(str(run_dir / "checkpoints" / name / "model.safetensors"))


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """The uninterrupted 2-rank run."""
    runs = tmp_path_factory.mktemp("runs")
    code, out, err = _train("--nproc", "2", *_sets(*SETTINGS, f"log.dir={runs}", "log.name=ddp"))
    assert code == 0, err
    return runs / "ddp"


def test_two_ranks_reach_the_weights_of_one_process(two_ranks, one_process_mlp):
    one = one_process_mlp
    a, b = _weights(two_ranks), _weights(one)
    assert a.keys() == b.keys()
    assert max(float((a[k] - b[k]).abs().max()) for k in a) <= 1e-5
    state = json.loads((two_ranks / "checkpoints" / "last" / "state.json").read_text())
    single = json.loads((one / "checkpoints" / "last" / "state.json").read_text())
    assert state["progress"]["step"] == single["progress"]["step"] == 20
    # validation metrics gathered across ranks are the single-process ones
    for k, v in single["progress"]["metrics"].items():
        assert state["progress"]["metrics"][k] == pytest.approx(v, abs=1e-5), k


def test_one_run_directory_with_one_event_file_and_dist_views(two_ranks, read_events):
    assert [p.name for p in two_ranks.parent.iterdir()] == ["ddp"]
    assert len(list(two_ranks.glob("events.out.tfevents.*"))) == 1
    tags = read_events(two_ranks).Tags()["scalars"]
    for tag in ("dist/world_size", "dist/step_time_ms/rank0", "dist/step_time_ms/rank1", "dist/collective_ms/rank1",
                "dist/collective_share", "dist/slowest_rank", "train/loss", "val/accuracy"):
        assert tag in tags, tag
    metrics = json.loads((two_ranks / "metrics.json").read_text())
    assert metrics["training"]["steps"] == 20


def test_eval_and_export_read_a_distributed_run_as_any_other(two_ranks, tmp_path):
    from zerotune.export import ExportOptions, export_run
    from zerotune.pipeline.train import evaluate

    metrics = json.loads((two_ranks / "metrics.json").read_text())
    assert evaluate(two_ranks)["accuracy"] == metrics["test"]["accuracy"] > 0.8
    result = export_run(two_ranks, ExportOptions("torchscript"), out=tmp_path)
    assert result.path.is_file()


def test_serve_answers_for_a_distributed_run_as_for_any_other(two_ranks):
    import httpx
    import numpy as np
    from sklearn.datasets import load_digits

    from zerotune.serve import create_app, load_served_model, running_server

    digits = load_digits()
    keep = digits.target < 3  # the run learned classes 0, 1 and 2
    x, y = digits.images[keep][:60], digits.target[keep][:60]
    with running_server(create_app(load_served_model(two_ranks))) as url:
        shape = httpx.get(url + "/metadata", trust_env=False).json()["input"]["shape"]
        r = httpx.post(url + "/predict", json={"inputs": x.reshape(len(x), *shape).tolist()}, trust_env=False)
    assert r.status_code == 200
    assert np.mean(np.array(r.json()["classes"]) == y) > 0.8


def test_a_killed_rank_stops_the_job_and_resume_continues_bit_exact_or_in_one_process(two_ranks, tmp_path):
    from zerotune.distributed.launch import WorkerFailed, launch

    script = tmp_path / "kill.py"
    script.write_text(KILL)
    with pytest.raises(WorkerFailed, match=r"^rank 1 \(pid \d+\) was killed by SIGKILL; the other ranks were stopped"):
        launch(2, [*SETTINGS, f"log.dir={tmp_path / 'runs'}", "log.name=killed"], program=(str(script),))
    killed = tmp_path / "runs" / "killed"
    assert not (killed / "metrics.json").exists()
    from zerotune.train.checkpoint import find_checkpoint  # also finds one caught between its two renames

    saved = json.loads((find_checkpoint(killed / "checkpoints" / "last") / "state.json").read_text())
    assert 0 < saved["progress"]["step"] <= 12  # resumed from the middle of the run
    shutil.copytree(killed, tmp_path / "runs" / "one")
    code, out, err = _train("--nproc", "2", "--resume", str(killed))
    assert code == 0, err
    a, b = _weights(killed), _weights(two_ranks)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # the same checkpoint continued by one process: the same steps, up to the order of the reduction
    one = zerotune.train(None, resume=tmp_path / "runs" / "one").run_dir
    c = _weights(one)
    assert max(float((c[k] - b[k]).abs().max()) for k in b) <= 1e-5


def test_max_restarts_continues_from_the_last_checkpoint_by_itself(two_ranks, tmp_path, monkeypatch):
    from zerotune.distributed.launch import launch

    script = tmp_path / "die_once.py"
    script.write_text(DIE_ONCE)
    monkeypatch.setenv("KILL_RECORD", str(tmp_path / "kills"))
    launch(2, ["train", "--runs-dir", str(tmp_path / "runs"), "--name", "restarted", *_sets(*SETTINGS)],
           max_restarts=1, program=(str(script),))
    run = tmp_path / "runs" / "restarted"
    assert (tmp_path / "kills").read_text() == "killed\n"  # the first attempt lost rank 1, the second finished
    assert json.loads((run / "metrics.json").read_text())["training"]["steps"] == 20
    a, b = _weights(run), _weights(two_ranks)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_single_process_checkpoint_continues_in_two_ranks(two_ranks, tmp_path):
    # one process stops at step 10 (mid-epoch); two ranks take it to step 20
    half = zerotune.train(load_config(None, [*SETTINGS, "train.max_steps=10", f"log.dir={tmp_path}",
                                             "log.name=half"])).run_dir
    code, out, err = _train("--nproc", "2", "--resume", str(half), "--set", "train.max_steps=20")
    assert code == 0, err
    a, b = _weights(half), _weights(two_ranks)
    assert max(float((a[k] - b[k]).abs().max()) for k in b) <= 1e-5
