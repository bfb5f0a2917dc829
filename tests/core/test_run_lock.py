"""One job at a time in a run directory: a second writer is refused in one line naming the holder's pid,
a killed holder blocks nothing, and a lock file lives only as long as its job."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from zerotune.cli.main import main
from zerotune.errors import UserError
from zerotune.run.files import RunDir
from zerotune.run.lock import hold_lock, run_lock
from zerotune.train.checkpoint import find_checkpoint, read_state

SRC = Path(__file__).resolve().parents[2] / "src"
LONG = ["--set", "data.name=iris", "--set", "model.name=mlp", "--set", "model.hidden=[8]", "--set", "train.epochs=100000",
        "--set", "train.checkpoint_every_seconds=0.2", "--set", "train.threads=1", "--no-progress"]

HOLD = textwrap.dedent("""
    import sys, time
    from zerotune.run.lock import run_lock

    with run_lock(sys.argv[1]):
        print("held", flush=True)
        time.sleep(60)
""")


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_a_second_holder_is_refused_by_pid_until_the_first_is_killed(tmp_path):
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], env=_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "held\n"
        before = sorted(tmp_path.iterdir())
        with pytest.raises(UserError, match=rf"^run directory {tmp_path} is in use by another process "
                                            rf"\(pid {p.pid}\); wait for it to end, or stop it$"):
            with run_lock(tmp_path):
                pass
        assert sorted(tmp_path.iterdir()) == before == [RunDir(tmp_path).lock]  # the refusal wrote nothing
        assert RunDir(tmp_path).lock.read_text() == f"{p.pid}\n"
    finally:
        p.kill()
        p.wait()
    assert RunDir(tmp_path).lock.exists()  # left by the killed holder; the kernel has released its lock
    with run_lock(tmp_path):
        assert RunDir(tmp_path).lock.read_text() == f"{os.getpid()}\n"
    assert list(tmp_path.iterdir()) == []  # the lock file goes with the job that held it


def test_the_lock_file_goes_when_the_job_fails_and_a_missing_directory_is_not_locked(tmp_path):
    with pytest.raises(RuntimeError):
        with run_lock(tmp_path):
            raise RuntimeError("the job failed")
    assert list(tmp_path.iterdir()) == []
    with run_lock(tmp_path / "missing"):  # the command's own checks say what is wrong with it
        pass
    assert list(tmp_path.iterdir()) == []


def test_a_lock_file_removed_by_its_holder_after_we_opened_it_is_not_held(tmp_path, monkeypatch):
    lock, real_open, calls = RunDir(tmp_path).lock, os.open, []

    def open_then_lose_it(path, *args):
        fd = real_open(path, *args)
        if Path(path) == lock and not calls:  # as a holder that lets go between our open and our flock
            calls.append(path)
            os.unlink(path)
        return fd

    lock.write_text("1\n")
    monkeypatch.setattr(os, "open", open_then_lose_it)
    with hold_lock(lock, "x", remove=True) as hold:
        assert os.fstat(hold.fd).st_ino == os.stat(lock).st_ino  # the file that is there now
    assert calls and not lock.exists()


def _wait_for(path: Path, p: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while not path.exists():
        assert p.poll() is None and time.monotonic() < deadline, p.communicate()[1]
        time.sleep(0.1)


def test_a_running_job_refuses_resume_export_and_report_then_a_kill_frees_the_run(tmp_path, capsys):
    run = tmp_path / "long"
    p = subprocess.Popen([sys.executable, "-m", "zerotune", "train", "--runs-dir", str(tmp_path), "--name", "long",
                          *LONG], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(RunDir(run).checkpoint("last") / "state.json", p)
        assert RunDir(run).lock.read_text() == f"{p.pid}\n"
        for command in (["train", "--resume"], ["export"], ["report"]):
            assert main([*command, str(run)]) == 2
            line = _one_line(capsys)
            assert line.startswith(f"error: run directory {run} is in use by another process (pid {p.pid}); "), line
        assert len(RunDir(run).event_files()) == 1  # no second writer's events
        assert not RunDir(run).export.exists() and not RunDir(run).report("html").exists()
    finally:
        p.send_signal(signal.SIGKILL)
        p.communicate()
    step = read_state(find_checkpoint(RunDir(run).checkpoint("last")))["progress"]["step"]
    assert RunDir(run).lock.exists()  # stale: its holder was killed
    assert main(["train", "--resume", str(run), "--set", f"train.max_steps={step + 1}"]) == 0
    assert f"run: {run}" in capsys.readouterr().out
    assert not RunDir(run).lock.exists()
