"""`zerotune profile` on the digits MLP: the trace, the phase shares, the TensorBoard tags, exit codes."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from zerotune.cli.main import main
from zerotune.config import load_config
from zerotune.run.files import RunDir
from zerotune.track.events import read_run_events
from zerotune.tune.profile import PHASES, profile

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "digits_mlp.toml"
QUIET = ["log.progress=false"]


@pytest.fixture(scope="module")
def recipe_profile(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return profile(RECIPE, 3, QUIET + [f"log.dir={root}"]), root


def test_recipe_gets_a_new_profile_run_directory(recipe_profile):
    result, root = recipe_profile
    (run,) = list(root.iterdir())
    assert run.name.startswith("digits-mlp-profile-")
    assert result.out_dir == RunDir(run).profile
    assert result.trace == RunDir(run).profile_trace and result.trace.name == "trace.json.gz"


def test_trace_is_gzip_json_with_the_phase_spans(recipe_profile):
    result, _ = recipe_profile
    trace = json.loads(gzip.decompress(result.trace.read_bytes()))
    names = {e.get("name") for e in trace["traceEvents"]}
    assert {f"zerotune/{p}" for p in PHASES} <= names
    assert "aten::mm" in names or "aten::addmm" in names  # the MLP's matrix products


def test_phase_shares_sum_to_one(recipe_profile):
    result, _ = recipe_profile
    assert set(result.shares) == set(PHASES)
    assert sum(result.shares.values()) == pytest.approx(1.0)
    assert all(v >= 0 for v in result.shares.values())
    assert result.shares["forward"] > 0 and result.shares["backward"] > 0
    assert result.step_ms > 0 and result.steps == 3
    assert "Self CPU" in result.table and "zerotune/" not in result.table


def test_tensorboard_tags_read_back(recipe_profile):
    result, _ = recipe_profile
    events = read_run_events(result.out_dir, texts=True)
    for p in PHASES:
        assert events.last(f"profile/share_{p}") == pytest.approx(result.shares[p], rel=1e-5)
    assert events.last("profile/step_ms") == pytest.approx(result.step_ms, rel=1e-5)
    text = events.texts["profile/top_operators"]
    assert "forward" in text and "ui.perfetto.dev" in text


def test_cli_profiles_a_run_into_its_profile_directory(tmp_path, capfd):
    run = tmp_path / "myrun"
    run.mkdir()
    RunDir(run).config.write_text(load_config(RECIPE, QUIET).to_yaml().replace("progress: false", "progress: true"))
    assert main(["profile", str(run), "--steps", "2"]) == 0
    out, err = capfd.readouterr()
    assert "chrome://tracing" in out and "forward" in out
    # neither the profiler's own notes nor a header announcing the recipe's whole length
    assert "USDT" not in out + err and "profiler_start" not in out + err and "to step" not in out
    assert RunDir(run).profile_trace.is_file()
    assert main(["profile", str(run), "--steps", "1"]) == 0  # again: the earlier profile is replaced
    assert len(RunDir(RunDir(run).profile).event_files()) == 2  # the profiler's and the training views'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["myrun"]  # no new run directory beside it


@pytest.mark.parametrize("args", [
    ["--steps", "0"],
    ["--steps", "1000"],
    ["no/such/recipe.toml"],
    ["EMPTY_DIR"],  # a directory that is not a run
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, args):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "EMPTY_DIR").mkdir()
    argv = ["profile", str(RECIPE), *args] if args[0].startswith("--") else ["profile", *args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["EMPTY_DIR"]  # nothing written
