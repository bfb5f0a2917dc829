"""`zerotune train --nproc 2` from outside: a rank killed with -9, and Ctrl-C, each end the job in one line."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from zerotune.cli.main import main
from zerotune.run.files import RunDir
from zerotune.train.checkpoint import find_checkpoint, read_state

SRC = Path(__file__).resolve().parents[2] / "src"
LONG = ["--no-progress", "--set", "model.name=mlp", "--set", "train.epochs=1000", "--set", "log.tensorboard=false",
        "--set", "train.checkpoint_every_seconds=0"]


def _start(runs: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen([sys.executable, "-m", "zerotune", "train", "--nproc", "2", "--runs-dir", str(runs),
                             "--name", "long", *LONG], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def _wait_for_checkpoint(p: subprocess.Popen, runs: Path) -> None:
    while not (runs / "long" / "checkpoints" / "last" / "state.json").exists():
        assert p.poll() is None, p.communicate()[1]
        time.sleep(0.2)


def _rank_pid(p: subprocess.Popen, rank: int) -> int:
    children = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
    for pid in map(int, children):
        if f"RANK={rank}" in Path(f"/proc/{pid}/environ").read_text().split("\0"):
            return pid
    raise AssertionError(f"no rank {rank} among {children}")


def test_a_rank_killed_with_sigkill_stops_the_job_in_one_line(tmp_path):
    p = _start(tmp_path)
    try:
        _wait_for_checkpoint(p, tmp_path)
        victim = _rank_pid(p, 1)
        os.kill(victim, signal.SIGKILL)
        _, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 1
    assert err.splitlines() == [f"error: rank 1 (pid {victim}) was killed by SIGKILL; the other ranks were stopped; "
                                f"continue with: zerotune train --nproc 2 --resume {tmp_path / 'long'}"]


def test_ctrl_c_stops_every_rank_in_one_line(tmp_path):
    p = _start(tmp_path)
    try:
        _wait_for_checkpoint(p, tmp_path)
        os.killpg(p.pid, signal.SIGINT)  # what Ctrl-C sends: the launcher and its workers
        _, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 130
    assert err.splitlines() == ["interrupted"]


def _running(pid: int) -> bool:
    """Whether `pid` is alive; a zombie is not (it waits only for the reaper that adopted it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_workers_die_with_a_launcher_killed_with_sigkill_and_free_the_run(tmp_path, capsys):
    p, run = _start(tmp_path), tmp_path / "long"
    workers = []
    try:
        _wait_for_checkpoint(p, tmp_path)
        workers = [_rank_pid(p, rank) for rank in (0, 1)]
        # rank 0, the rank that writes, holds the run; a second job is refused, naming it
        assert RunDir(run).lock.read_text() == f"{workers[0]}\n"
        assert main(["train", "--resume", str(run)]) == 2
        assert capsys.readouterr().err.startswith(f"error: run directory {run} is in use by another process "
                                                  f"(pid {workers[0]}); ")
        p.kill()  # SIGKILL to the launcher alone: its agent cannot stop anything
        killed = time.monotonic()
        while any(map(_running, workers)) and time.monotonic() - killed < 10:
            time.sleep(0.05)
        seconds = time.monotonic() - killed
        p.communicate(timeout=10)
    finally:
        for pid in [p.pid, *workers]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert p.returncode == -signal.SIGKILL
    assert not any(map(_running, workers)), f"workers {workers} outlived their launcher by {seconds:.1f}s"
    print(f"\nworkers gone {seconds:.2f}s after the launcher was killed")
    step = read_state(find_checkpoint(RunDir(run).checkpoint("last")))["progress"]["step"]
    assert main(["train", "--resume", str(run), "--set", f"train.max_steps={step + 1}"]) == 0  # nothing holds it now
    assert not RunDir(run).lock.exists()
