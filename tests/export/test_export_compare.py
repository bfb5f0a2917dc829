"""The comparison table and the `export` subcommand as the main CLI calls it."""

import argparse
import json
import re

import pytest

from zerotune.export import ExportOptions, compare_run, print_comparison
from zerotune.export.compare import loss_note
from zerotune.cli.export import add_parser, main


def parse(*argv):
    p = argparse.ArgumentParser(prog="zerotune")
    add_parser(p.add_subparsers(dest="command", required=True))
    return p.parse_args(["export", *argv])


@pytest.fixture(scope="module")
def mlp_comparison(mlp_run):
    return compare_run(mlp_run, iters=3, threads=1)


def test_compare_measures_every_variant(mlp_run, mlp_comparison):
    c = mlp_comparison
    names = [r.variant for r in c.rows if r.variant != "tflite"]  # tflite: only with that extra installed
    assert names == ["pytorch fp32 (eager)", "torchscript", "onnx", "torchscript int8-dynamic", "onnx int8-dynamic",
                     "torchscript int8-static", "onnx int8-static", "onnx pruned-global-50%",
                     "onnx pruned-channel-50%"]
    assert c.metric_name == "accuracy" and c.threads == 1
    rows = {r.variant: r for r in c.rows}
    base = rows["pytorch fp32 (eager)"].metric
    for r in c.rows:
        assert r.bytes > 0 and 0 < r.gzip_bytes
        assert 0 < r.p50_b1 <= r.p95_b1 and 0 < r.p50_b32 <= r.p95_b32
        assert 0.5 < r.metric <= 1.0
        # a note says "loses N points" exactly when the variant is more than 5 points below the eager model
        assert (r.note != "") == (base - r.metric > 0.05) and (r.note == "" or r.note.startswith("loses "))
    assert rows["onnx"].note == "" and rows["onnx int8-dynamic"].note == ""
    assert rows["onnx pruned-channel-50%"].note.startswith("loses ")  # without fine-tuning, this MLP loses ~20
    expected = json.loads((mlp_run / "metrics.json").read_text())["test"]["accuracy"]
    assert rows["pytorch fp32 (eager)"].metric == pytest.approx(expected, abs=1e-9)
    assert rows["onnx"].metric == rows["pytorch fp32 (eager)"].metric
    assert rows["onnx int8-dynamic"].bytes <= 0.3 * rows["onnx"].bytes
    assert rows["onnx pruned-global-50%"].sparsity == pytest.approx(0.5, abs=1e-3)
    # zeros compress: the pruned file is the same size but gzips far smaller
    assert rows["onnx pruned-global-50%"].bytes == rows["onnx"].bytes
    assert rows["onnx pruned-global-50%"].gzip_bytes < 0.8 * rows["onnx"].gzip_bytes
    assert not (mlp_run / "export").exists() or not any((mlp_run / "export").glob("*pruned*"))  # writes nothing


def test_compare_table_and_infeasible_variants(tabular_run, capsys):
    c = compare_run(tabular_run, [ExportOptions("onnx"), ExportOptions("onnx", prune="channel")], iters=2)
    assert [r.variant for r in c.rows] == ["pytorch fp32 (eager)", "onnx", "onnx pruned-channel-50%"]
    assert c.rows[2].bytes is None and "channel pruning needs hidden layers" in c.rows[2].note
    print_comparison(c)
    out = re.sub(r"[│\s]+", " ", capsys.readouterr().out)  # undo the note's wrapping inside its cell
    assert "onnx pruned-channel-50% channel pruning needs hidden layers" in out
    assert "batch 32" in out and "accuracy" in out


def test_compare_flags_a_variant_that_loses_accuracy(cnn_run, capsys):
    c = compare_run(cnn_run, [ExportOptions("onnx"), ExportOptions("onnx", prune="channel", amount=0.9)], iters=1,
                    threads=1)
    eager, onnx, pruned = c.rows
    assert eager.metric - pruned.metric > 0.05, (eager.metric, pruned.metric)  # 90% of channels: a real loss
    assert onnx.note == ""
    lost = (eager.metric - pruned.metric) * 100
    assert pruned.note == (f"loses {lost:.1f} points of accuracy ({pruned.metric:.4f} vs {eager.metric:.4f}; more "
                           "than 5 points); fine-tune after pruning (--finetune-epochs) or prune less (--amount)")
    print_comparison(c)
    out = re.sub(r"[│\s]+", " ", capsys.readouterr().out)
    assert f"loses {lost:.1f} points of accuracy" in out


def test_loss_note_threshold():
    plain, pruned = ExportOptions("onnx"), ExportOptions("onnx", prune="channel")
    assert loss_note(0.90, 0.95, "accuracy", plain) == ""  # exactly 5 points: within the limit
    assert loss_note(0.097, 0.95, "accuracy", plain) == (
        "loses 85.3 points of accuracy (0.0970 vs 0.9500; more than 5 points)")
    assert loss_note(0.80, 0.90, "r2", pruned).startswith("loses 10.0 points of r2 (0.8000 vs 0.9000;")
    assert loss_note(None, 0.95, "accuracy", plain) == loss_note(0.5, None, "accuracy", plain) == ""


def test_cli_export_writes_and_reports(tabular_run, tmp_path, capsys):
    args = parse(str(tabular_run), "--format", "torchscript", "--int8", "dynamic", "--out", str(tmp_path))
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'model-int8-dynamic.pt'}" in out and "parity vs pytorch fp32" in out
    assert (tmp_path / "model-int8-dynamic.pt.json").exists()


def test_cli_compare_json(tabular_run, capsys):
    assert main([str(tabular_run), "--compare", "--iters", "2", "--threads", "1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert rows[0]["variant"] == "pytorch fp32 (eager)" and len([r for r in rows if r["variant"] != "tflite"]) == 9


def test_cli_defaults():
    args = parse("runs/x")
    got = (args.format, args.opset, args.int8, args.prune, args.amount, args.force)
    assert got == ("onnx", 18, None, None, 0.5, False)


@pytest.mark.parametrize("argv, message", [
    (["{missing}"], "does not exist"),
    (["{run}", "--opset", "7"], "opset 7 is not supported"),
    (["{run}", "--prune", "global", "--amount", "0"], "prune amount must be between 0 and 1"),
    (["{run}", "--compare", "--threads", "-1"], "threads must be a positive integer up to"),
])
def test_cli_errors_are_one_line(tabular_run, tmp_path, capsys, argv, message):
    argv = [a.format(missing=tmp_path / "nope", run=tabular_run) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
