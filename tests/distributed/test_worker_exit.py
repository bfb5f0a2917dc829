"""A torchrun worker ends without the interpreter's finalization, its output flushed and its exit code kept.

gloo's worker threads release a finished collective's tensors on their own; one still doing so
while the interpreter finalizes cannot take the GIL and aborts the process (SIGABRT, "terminate
called without an active exception"). Before `end_process`, 1 run in 25 to 50 of a 2-rank FSDP job
failed that way after training to the end (a core dump showed gloo's thread in
~AsyncAllgatherCoalescedWork taking the GIL while the main thread was in Py_FinalizeEx).
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

SCRIPT = textwrap.dedent("""
    import atexit, sys
    from pathlib import Path
    from zerotune.distributed.launch import end_process

    atexit.register(lambda: Path(sys.argv[1]).write_text("finalized"))
    print("last line", end="")  # still in the buffer: end_process must flush it
    print("to stderr", end="", file=sys.stderr)
    end_process(3)
""")


def _run(tmp_path: Path, worker: bool) -> tuple[subprocess.CompletedProcess, Path]:
    script, marker = tmp_path / "end.py", tmp_path / f"finalized-{worker}"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    env["PYTHONPATH"] = f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    if worker:
        env.update(RANK="1", WORLD_SIZE="2")
    done = subprocess.run([sys.executable, str(script), str(marker)], capture_output=True, text=True, env=env,
                          timeout=60)
    return done, marker


def test_a_worker_skips_finalization_with_its_output_and_exit_code(tmp_path):
    done, marker = _run(tmp_path, worker=True)
    assert (done.returncode, done.stdout, done.stderr) == (3, "last line", "to stderr")
    assert not marker.exists()  # atexit handlers are part of finalization


def test_any_other_process_exits_as_usual(tmp_path):
    done, marker = _run(tmp_path, worker=False)
    assert (done.returncode, done.stdout, done.stderr) == (3, "last line", "to stderr")
    assert marker.read_text() == "finalized"


def test_a_workers_command_line_error_keeps_its_exit_code_and_message(tmp_path):
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "RANK": "0",
           "WORLD_SIZE": "2"}
    done = subprocess.run([sys.executable, "-m", "zerotune", "train", "--no-such-flag"], capture_output=True,
                          text=True, env=env, timeout=60)
    assert done.returncode == 2  # argparse's SystemExit, through end_process
    assert "unrecognized arguments: --no-such-flag" in done.stderr
