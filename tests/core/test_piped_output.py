"""Output that is piped or redirected: plain lines that are not cut at 80 columns; the doctor's closing line; a reader
that stops early (`| head -1`)."""

import os
import signal
import subprocess
import sys

import pytest

from zerotune.terminal.console import console
from zerotune.doctor.after_training import print_serious
from zerotune.doctor.findings import Finding


def test_a_piped_table_keeps_each_row_on_one_line(capsys):
    from rich.table import Table

    table = Table("variant", "note")
    note = "a long note " * 20
    table.add_row("onnx int8-static", note)
    console(min_width=130).print(table)
    out = capsys.readouterr().out
    assert any(note.strip() in line for line in out.splitlines())
    assert "\x1b[" not in out  # no colour codes in a file


def test_piped_eval_keeps_each_metric_beside_its_value(cnn_run):
    out = subprocess.run([sys.executable, "-m", "zerotune", "eval", str(cnn_run)], capture_output=True, text=True,
                         env={"COLUMNS": "80", "PATH": "/usr/bin:/bin"}, timeout=120)
    assert out.returncode == 0, out.stderr
    line = next(l for l in out.stdout.splitlines() if l.startswith("accuracy"))
    assert "roc_auc " in line and line.split("roc_auc ")[1].split()[0].replace(".", "").isdigit()
    assert "loss " in line


def test_the_doctor_says_when_it_found_nothing(capsys):
    print_serious([], "runs/x")
    assert capsys.readouterr().out == "doctor: no findings\n"
    print_serious(None, "runs/x")  # not checked (no TensorBoard events): nothing to say
    assert capsys.readouterr().out == ""
    minor = Finding(id="lr_low", severity="low", message="m", evidence={}, fixes=["f"])
    print_serious([minor], "runs/x")
    assert capsys.readouterr().out == "doctor: no serious findings (1 minor: zerotune doctor runs/x)\n"


@pytest.fixture(scope="module")
def many_runs(tmp_path_factory):
    """300 runs with long names and empty event files: `zerotune runs` prints far more than a pipe holds (64 KiB)."""
    root = tmp_path_factory.mktemp("many-runs")
    for i in range(300):
        run = root / f"run{i:03d}-{'x' * 200}"
        run.mkdir()
        (run / "events.out.tfevents.1").touch()
    return root


@pytest.mark.parametrize("flags", [["--json"], []], ids=["print", "rich-table"])
def test_a_reader_that_stops_early_ends_the_command_quietly(many_runs, flags):
    # `zerotune runs | head -1`: the reader closes the pipe while the command still writes.
    # Buffered stdout, as a shell gives it (unbuffered, a write cut short by the pipe's end drops its rest unsaid).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    p = subprocess.Popen([sys.executable, "-m", "zerotune", "runs", *flags, str(many_runs)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    first = p.stdout.readline()
    p.stdout.close()
    err = p.stderr.read().decode()
    p.stderr.close()
    assert first.strip() in (b"[", b"300 runs")
    assert p.wait(timeout=120) == 128 + signal.SIGPIPE, err  # as a shell reports `seq 100000 | head -1`
    assert err == ""  # no "internal error BrokenPipeError", no "Exception ignored" at the interpreter's exit
