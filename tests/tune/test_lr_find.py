"""The learning-rate range test on the digits MLP: curve, suggestion, TensorBoard tags, PNG, CLI."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from zerotune.cli.main import main
from zerotune.config import load_config
from zerotune.errors import UserError
from zerotune.track.events import read_run_events
from zerotune.tune.lr_find import check_range, lr_find, rate_at

RECIPE = str(Path(__file__).resolve().parents[2] / "recipes" / "digits_mlp.toml")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def found(tmp_path_factory):
    config = load_config(RECIPE, ["train.threads=1"])
    return lr_find(config, start=1e-5, end=10.0, steps=60, runs_dir=tmp_path_factory.mktemp("runs"), name="lrf")


def test_rates_grow_exponentially_from_start_to_end():
    rates = [rate_at(i, 1e-4, 1.0, 5) for i in range(5)]
    assert rates[0] == pytest.approx(1e-4) and rates[-1] == pytest.approx(1.0)
    assert all(b / a == pytest.approx(10.0) for a, b in zip(rates, rates[1:]))


def test_curve_falls_then_blows_up_and_suggestion_is_the_lower_reading(found):
    assert found.stopped_early  # 10 is far too high a rate for Adam on this MLP
    assert len(found.lrs) == len(found.losses) == len(found.raw_losses) < 60
    assert all(b > a for a, b in zip(found.lrs, found.lrs[1:]))
    assert min(found.losses) < 0.8 * found.losses[0]  # a useful rate lowered the loss
    low = found.losses.index(min(found.losses))
    assert found.min_loss_lr == found.lrs[low]
    assert found.suggestion == pytest.approx(min(found.steepest_lr, found.min_loss_lr / 10))
    assert 1e-4 < found.suggestion < 1.0
    assert found.lrs[0] <= found.steepest_lr <= found.min_loss_lr
    assert found.losses[-1] > 4 * min(found.losses) or not math.isfinite(found.losses[-1])


def test_tensorboard_tags_read_back(found):
    events = read_run_events(found.run_dir, images=True)
    n = len(found.lrs)
    for tag in ("lr_find/lr", "lr_find/loss", "lr_find/smoothed_loss"):
        assert [s for s, _ in events.scalars[tag]] == list(range(n)), tag
    assert [v for _, v in events.scalars["lr_find/lr"]] == pytest.approx(found.lrs, rel=1e-5)
    assert events.last("lr_find/suggestion") == pytest.approx(found.suggestion, rel=1e-5)
    assert events.images["lr_find/curve"].startswith(PNG_MAGIC)


def test_png_written(found):
    png = found.run_dir / "lr_find.png"
    assert png.read_bytes().startswith(PNG_MAGIC)


def test_runs_lists_the_test_with_its_model_and_data(found):
    from zerotune.track.runs_table import collect_runs

    assert load_config(found.run_dir / "config.yaml").model.name == "mlp"  # the config that was tested
    (row,) = collect_runs(found.run_dir.parent)
    assert (row.name, row.model, row.data, row.kind, row.steps) == ("lrf", "mlp", "digits", "lr-find",
                                                                     len(found.lrs) - 1)


@pytest.mark.parametrize("start, end, steps", [(1.0, 0.1, 50), (0.1, 0.1, 50), (0.0, 1.0, 50), (-1.0, 1.0, 50),
                                               (1e-5, 1.0, 2), (1e-5, 1.0, 100000)])
def test_bad_range_is_a_user_error(start, end, steps):
    with pytest.raises(UserError):
        check_range(start, end, steps)


@pytest.mark.parametrize("flags", [["--start", "1", "--end", "0.1"], ["--start", "0"], ["--steps", "1"],
                                   ["--end", "-3"]])
def test_cli_bad_input_exits_2_with_one_line_and_writes_nothing(flags, tmp_path, capsys):
    assert main(["lr-find", RECIPE, "--runs-dir", str(tmp_path / "runs"), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_cli_prints_the_train_command(tmp_path, capsys):
    code = main(["lr-find", RECIPE, "--set", "train.threads=1", "--start", "1e-5", "--steps", "30",
                 "--runs-dir", str(tmp_path), "--name", "cli"])
    assert code == 0
    out = capsys.readouterr().out
    command = out.strip().splitlines()[-1]
    assert command.startswith(f"zerotune train {RECIPE} --set train.threads=1 --set optim.lr=")
    lr = float(command.rsplit("=", 1)[1])
    assert lr > 0
    assert (tmp_path / "cli" / "lr_find.png").is_file()


def test_a_flat_shelf_before_the_blow_up_gives_the_steepest_rate(tmp_path):
    from zerotune.tune.lr_find import _result

    lrs = [rate_at(i, 1e-4, 1.0, 9) for i in range(9)]  # about 3.2x apart
    smooth = [2.3, 2.3, 1.5, 1.0, 0.99, 0.98, 0.97, 0.96, 5.0]  # steepest at lrs[1], minimum at lrs[7]
    result = _result(lrs, smooth, smooth, True, tmp_path)
    assert result.min_loss_lr == lrs[7] and result.steepest_lr == lrs[1]
    assert result.suggestion == lrs[1]  # below lrs[7] / 10
