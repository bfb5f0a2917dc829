"""A 3-trial `zerotune sweep` end to end: run directories, study.db, table, best recipe, runs and hparams."""

from __future__ import annotations

import pytest

from zerotune.cli.main import main
from zerotune.config import load_config
from zerotune.pipeline.train import train
from zerotune.run.files import RunDir, SweepDir, read_json
from zerotune.runload.load import read_run_config
from zerotune.track.runs_table import collect_runs
from zerotune.tune.sweep import read_plan
from zerotune.tune.sweep_study import load_study

from .sweep_util import RECIPE, sets

PARAMS = ["--param", "optim.lr=loguniform:1e-3:3e-2", "--param", "model.dropout=uniform:0:0.5"]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    capture = pytest.MonkeyPatch()
    capture.setenv("COLUMNS", "200")
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["sweep", RECIPE, *PARAMS, "--trials", "3", "--runs-dir", str(root), "--name", "s",
                     *sets("train.epochs=3")])
    capture.undo()
    assert code == 0, out.getvalue()
    return SweepDir(root / "s"), out.getvalue()


def test_every_trial_is_a_finished_run_directory(swept):
    sweep, _ = swept
    assert sweep.study.is_file() and sweep.spec.is_file() and sweep.best_recipe.is_file()
    for n in range(3):
        run = RunDir(sweep.path / f"trial-{n:03d}")
        assert run.is_run() and run.metrics.is_file() and run.event_files()
        assert read_json(run.metrics)["training"]["steps"] == 15
    assert not (sweep.path / "trial-003").exists()


def test_study_holds_each_trial_with_its_runs_values(swept):
    sweep, _ = swept
    study = load_study(read_plan(sweep.path), sweep.study)
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    for t in trials:
        run = sweep.path / t.user_attrs["run"]
        assert t.value == pytest.approx(read_json(RunDir(run).metrics)["training"]["best"])
        config = read_run_config(run)
        assert config.optim.lr == pytest.approx(t.params["optim.lr"])
        assert config.model.options["dropout"] == pytest.approx(t.params["model.dropout"])
        assert 1e-3 <= t.params["optim.lr"] <= 3e-2
    assert study.direction.name == "MINIMIZE" and read_plan(sweep.path).metric == "val/loss"


def test_output_has_the_table_best_and_importances(swept):
    sweep, out = swept
    rows = [line for line in out.splitlines() if "COMPLETE" in line and "│" in line]
    assert len(rows) == 3
    assert "model.dropout" in out and "optim.lr" in out and "val accuracy" in out
    assert f"best recipe: {sweep.best_recipe}" in out
    assert "parameter importances (fANOVA): " in out


def test_best_recipe_reproduces_the_best_trial(swept, tmp_path):
    sweep, out = swept
    study = load_study(read_plan(sweep.path), sweep.study)
    best = study.best_trial
    assert f"best: trial {best.number}," in out
    trial_config = read_run_config(sweep.path / best.user_attrs["run"]).to_dict()
    recipe = load_config(sweep.best_recipe).to_dict()
    # the recipe keeps precision "auto", portable to another CPU; the trial recorded what it resolved to here
    assert recipe["train"].pop("precision") == "auto" and trial_config["train"].pop("precision") in ("32", "bf16")
    for group in ("data", "model", "optim", "schedule", "train"):
        assert recipe[group] == trial_config[group], group
    again = train(load_config(sweep.best_recipe, [f"log.dir={tmp_path}", "log.progress=false"]))
    assert again.metrics["training"]["best"] == pytest.approx(best.value, rel=1e-5)


def test_runs_table_and_hparams_list_every_trial(swept):
    sweep, _ = swept
    study = load_study(read_plan(sweep.path), sweep.study)
    rows = {r.name: r for r in collect_runs(sweep.path)}
    assert sorted(rows) == ["trial-000", "trial-001", "trial-002"]
    for t in study.get_trials():
        row = rows[t.user_attrs["run"]]
        assert row.finished and row.monitor == "val/loss"
        assert row.hparams["optim.lr"] == pytest.approx(t.params["optim.lr"], rel=1e-6)
        assert row.hparams["model.dropout"] == pytest.approx(t.params["model.dropout"], rel=1e-6)


def test_eval_reads_a_trial(swept, capsys):
    sweep, _ = swept
    assert main(["eval", str(sweep.path / "trial-001"), "--json"]) == 0
    assert '"accuracy"' in capsys.readouterr().out


def test_resume_of_a_finished_sweep_only_reports(swept, capsys):
    sweep, _ = swept
    assert main(["sweep", "--resume", str(sweep.path)]) == 0
    out = capsys.readouterr().out
    assert "trial 0 COMPLETE" not in out and out.count("COMPLETE") == 3
    assert len(load_study(read_plan(sweep.path), sweep.study).get_trials()) == 3


def test_a_second_sweep_of_the_same_name_is_refused(swept, capsys):
    sweep, _ = swept
    code = main(["sweep", RECIPE, *PARAMS, "--trials", "1", "--runs-dir", str(sweep.path.parent), "--name", "s"])
    assert code == 2 and "already exists" in capsys.readouterr().err


def test_board_hparams_tab_shows_every_trial_with_its_metrics(swept):
    import json
    import time
    import urllib.request

    from zerotune.track.board import http_get, start_board

    sweep, _ = swept
    study = load_study(read_plan(sweep.path), sweep.study)
    body = {"experimentName": "", "allowedStatuses": ["STATUS_SUCCESS", "STATUS_RUNNING", "STATUS_UNKNOWN"],
            "colParams": [], "startIndex": 0, "sliceSize": 10}
    board = start_board(sweep.path, port=0)
    try:
        deadline = time.monotonic() + 60
        while len(json.loads(http_get(board.url + "data/runs"))) < 3 and time.monotonic() < deadline:
            time.sleep(0.5)
        req = urllib.request.Request(board.url + "data/plugin/hparams/session_groups", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", "X-XSRF-Protected": "1"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        groups = {g["name"]: g for g in json.loads(opener.open(req, timeout=30).read())["sessionGroups"]}
    finally:
        board.stop()
    assert sorted(groups) == ["trial-000", "trial-001", "trial-002"]
    for t in study.get_trials():
        group = groups[t.user_attrs["run"]]
        assert group["hparams"]["optim.lr"] == pytest.approx(t.params["optim.lr"], rel=1e-6)
        metrics = {m["name"]["tag"]: m["value"] for m in group["metricValues"]}
        assert metrics["best/val/loss"] == pytest.approx(t.value, rel=1e-5)  # the trial's objective
        assert 0 <= metrics["val/accuracy"] <= 1
