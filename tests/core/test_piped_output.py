"""Output that is piped or redirected: plain lines that are not cut at 80 columns; the doctor's closing line."""

import subprocess
import sys

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
