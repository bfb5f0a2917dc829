"""The run directory's names and how a new one is created."""

from __future__ import annotations

import datetime
import threading
from pathlib import Path

import pytest

import zerotune
from zerotune.config import load_config
from zerotune.errors import UserError
from zerotune.run.files import RunDir, create_run_dir, create_unique_run_dir
from zerotune.cli import scratch as scratch_cli

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


class _FrozenClock(datetime.datetime):
    """Every run starts in the same second."""

    @classmethod
    def now(cls, tz=None):
        return cls(2026, 11, 23, 14, 15, 2)


def test_run_dir_names_its_files(tmp_path):
    run = RunDir(tmp_path / "r")
    assert run.config == tmp_path / "r" / "config.yaml"
    assert run.metrics.name == "metrics.json" and run.meta.name == "meta.json" and run.env.name == "env.json"
    assert run.checkpoint("best") == tmp_path / "r" / "checkpoints" / "best"
    assert run.hf == tmp_path / "r" / "hf" and run.tokenizer == tmp_path / "r" / "tokenizer"
    assert not run.is_run()
    run.path.mkdir()
    run.config.write_text("{}\n")
    assert run.is_run()
    assert Path(run) == run.path  # usable wherever a path is


def test_unique_run_dir_counts_up_when_taken(tmp_path):
    made = [create_unique_run_dir(tmp_path / "runs", "x") for _ in range(3)]
    assert [p.name for p in made] == ["x", "x-2", "x-3"]
    assert all(p.is_dir() for p in made)


def test_unique_run_dir_gives_racing_callers_distinct_directories(tmp_path):
    barrier, made = threading.Barrier(8), []

    def create():
        barrier.wait()
        made.append(create_unique_run_dir(tmp_path, "same"))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(p.name for p in made) == sorted(["same"] + [f"same-{n}" for n in range(2, 9)])


def test_explicit_name_still_refuses_an_existing_directory(tmp_path):
    create_run_dir(tmp_path, "taken")
    with pytest.raises(UserError, match="already exists"):
        create_run_dir(tmp_path, "taken")


def test_unique_run_dir_reports_an_unwritable_root(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="cannot create run directory"):
        create_unique_run_dir(tmp_path / "file", "x")


def test_two_trainings_in_the_same_second_get_two_runs(tmp_path, monkeypatch):
    monkeypatch.setattr("zerotune.run.files.datetime", _FrozenClock)
    config = load_config(RECIPES / "iris_softmax.toml", ["log.progress=false", "log.tensorboard=false",
                                                          f"log.dir={tmp_path}", "train.epochs=1"])
    first, second = zerotune.train(config), zerotune.train(config)
    assert first.run_dir.name == "iris-logistic_regression-20261123-141502"
    assert second.run_dir.name == first.run_dir.name + "-2"
    assert RunDir(second.run_dir).metrics.is_file()


def test_two_scratch_runs_in_the_same_second_get_two_runs(tmp_path, monkeypatch):
    monkeypatch.setattr("zerotune.run.files.datetime", _FrozenClock)
    for _ in range(2):
        args = scratch_cli.build_parser().parse_args(
            ["scratch", "logreg", "--runs-dir", str(tmp_path), "--iters", "1"])
        assert args.func(args) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scratch-logreg-20261123-141502",
                                                          "scratch-logreg-20261123-141502-2"]
