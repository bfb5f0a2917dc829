"""Reading runs back: the runs table, reports, the CLI parsers, and runs killed mid-write."""

from __future__ import annotations

import argparse
import base64
import json
import re
import shutil
import struct

import pytest
from PIL import Image

from zerotune.errors import UserError
from zerotune.cli.track import add_parsers
from zerotune.track.events import find_runs, read_run_events
from zerotune.doctor.report import write_report
from zerotune.track.runs_table import collect_runs, key_hparams


def record_offsets(data: bytes) -> list[int]:
    """Start offset of each TFRecord: u64 length, u32 crc, payload, u32 crc."""
    offsets, pos = [], 0
    while pos + 12 <= len(data):
        offsets.append(pos)
        (n,) = struct.unpack("<Q", data[pos:pos + 8])
        pos += 16 + n
    return offsets


def killed_copy(run, dest):
    """A copy of ``run`` whose event file ends in the middle of a record, as after a kill."""
    shutil.copytree(run, dest, ignore=shutil.ignore_patterns("checkpoints", "projector*", "report*"))
    events, *after_training = sorted(dest.glob("*tfevents*"))
    for later in after_training:  # the doctor's findings: a killed run never got that far
        later.unlink()
    data = events.read_bytes()
    offsets = record_offsets(data)
    cut = offsets[len(offsets) * 2 // 3] + 20  # 20 bytes into a record's payload
    events.write_bytes(data[:cut])
    (dest / "metrics.json").unlink()
    return dest


def cli(*argv):
    p = argparse.ArgumentParser()
    add_parsers(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(argv)
    return args.func(args)


def test_find_runs(logdir):
    assert [r.name for r in find_runs(logdir)] == ["cls-a", "cls-b", "reg"]
    with pytest.raises(UserError, match="does not exist"):
        find_runs(logdir / "nope")


def test_runs_table(logdir):
    rows = {r.name: r for r in collect_runs(logdir)}
    assert set(rows) == {"cls-a", "cls-b", "reg"}
    a = rows["cls-a"]
    ev = read_run_events(logdir / "cls-a")
    monitor = a.monitor
    values = [v for _, v in ev.scalars[monitor]]
    assert a.best == pytest.approx(max(values) if "accuracy" in monitor else min(values))
    metrics = json.loads((logdir / "cls-a" / "metrics.json").read_text())
    assert a.steps == metrics["training"]["steps"] and a.finished and a.model == "cnn" and a.data == "digits"
    assert a.seconds == pytest.approx(metrics["training"]["seconds"], abs=0.01)
    keys = key_hparams(list(rows.values()))
    assert "optim.lr" in keys and "model.name" not in keys


def test_runs_command_output(logdir, capsys):
    assert cli("runs", str(logdir)) == 0
    out = capsys.readouterr().out
    assert "cls-a" in out and "cls-b" in out and "0.003" in out and "finished" in out
    assert cli("runs", str(logdir), "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} == {"cls-a", "cls-b", "reg"}


def test_runs_errors(tmp_path):
    with pytest.raises(UserError, match="no runs"):
        collect_runs(tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        cli("runs", str(tmp_path / "missing"))


def test_killed_run_still_reads(logdir, tmp_path):
    killed = killed_copy(logdir / "cls-a", tmp_path / "killed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(killed))
    acc.Reload()  # TensorBoard's reader stops at the cut record instead of failing
    assert acc.Scalars("train/loss")
    ev = read_run_events(killed)
    full = read_run_events(logdir / "cls-a")
    assert 0 < len(ev.scalars["train/loss"]) <= len(full.scalars["train/loss"]) and not ev.finished
    (row,) = collect_runs(tmp_path)
    assert row.name == "killed" and not row.finished and row.steps > 0
    report = write_report(killed)
    assert "did not finish" in report.read_text()


def test_html_report(cls_run, tmp_path):
    out = write_report(cls_run, tmp_path / "r.html")
    html = out.read_text()
    pngs = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)
    assert len(pngs) >= 5  # loss, accuracy, lr, grad norm, confusion matrix, ROC, worst
    for b64 in pngs:
        assert base64.b64decode(b64).startswith(b"\x89PNG")
    for text in ("final metrics", "confusion matrix", "loss", "optim.lr", "torch"):
        assert text in html
    assert "<script" not in html  # self-contained, static


def test_markdown_report_and_cli(reg_run, tmp_path, capsys):
    out = tmp_path / "rep.md"
    assert cli("report", str(reg_run), "--format", "md", "--out", str(out)) == 0
    assert str(out) in capsys.readouterr().out
    md = out.read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert links and all(Image.open(tmp_path / link).format == "PNG" for link in links)
    assert "predicted vs true" in md and "| r2 |" in md


def test_report_errors(tmp_path):
    with pytest.raises(UserError, match="no TensorBoard event files"):
        write_report(tmp_path)
    with pytest.raises(UserError, match="format"):
        write_report(tmp_path, fmt="pdf")
    with pytest.raises(SystemExit):
        cli("report", str(tmp_path), "--format", "pdf")
