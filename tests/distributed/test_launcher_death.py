"""A worker of ``--nproc`` dies with its launcher: through the kernel (prctl) or, without it, a watching thread.

The launcher here is a small Python process that starts one worker in a session of its own, as torch's
agent does, and exits; the `--nproc` job itself is killed in tests/distributed/test_faults_cli.py.
"""

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

WORKER = textwrap.dedent("""
    import sys, time
    from zerotune.distributed import parent

    if sys.argv[1] == "watch":  # as on a system without prctl
        parent._pdeathsig = lambda sig: False
    parent.end_with_launcher()
    print("started", flush=True)
    time.sleep(60)
""")

LAUNCHER = textwrap.dedent("""
    import os, subprocess, sys

    env = {**os.environ, "ZEROTUNE_NPROC": str(os.getpid())}
    worker = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]], env=env, stdout=subprocess.PIPE,
                              text=True, start_new_session=True)
    assert worker.stdout.readline() == "started\\n"
    print(worker.pid, flush=True)
""")


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("how", ["prctl", "watch"])
def test_a_worker_dies_within_a_second_of_its_launcher(how):
    done = subprocess.run([sys.executable, "-c", LAUNCHER, WORKER, how], capture_output=True, text=True, env=_env(),
                          timeout=60)
    assert done.returncode == 0, done.stderr
    worker, gone = int(done.stdout), time.monotonic()
    try:
        while _running(worker) and time.monotonic() - gone < 5:
            time.sleep(0.02)
        assert not _running(worker)
        assert time.monotonic() - gone < 1.5  # prctl: at once; the thread looks every 0.5 s
    finally:
        if _running(worker):
            os.kill(worker, 9)


def test_a_worker_whose_launcher_is_already_gone_does_not_start():
    gone = subprocess.Popen(["true"])
    gone.wait()
    env = {**_env(), "ZEROTUNE_NPROC": str(gone.pid)}  # a launcher that has exited before its worker started
    done = subprocess.run([sys.executable, "-c", WORKER, "prctl"], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == -9 and done.stdout == ""


def test_a_process_no_launcher_started_is_left_alone():
    env = {k: v for k, v in _env().items() if k != "ZEROTUNE_NPROC"}
    script = "from zerotune.distributed.parent import end_with_launcher; end_with_launcher(); print('ran')"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert (done.returncode, done.stdout) == (0, "ran\n")
