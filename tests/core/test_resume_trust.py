"""Resume and the run directory: every kill resumable, every bad input refused, a failed command writes nothing."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from zerotune.cli.main import main
from zerotune.run.checksums import write_checksums

ROOT = Path(__file__).resolve().parents[2]
IRIS = ["--set", "data.name=iris", "--set", "model.name=mlp", "--set", "model.hidden=[8]",
        "--set", "train.deterministic=true", "--set", "train.threads=1", "--no-progress"]


@dataclass
class Result:
    returncode: int
    stderr: str


@pytest.fixture
def zt(capsys):
    """The CLI's entry point, in this process (no second start of torch): exit code and stderr."""

    def run(*args) -> Result:
        code = main([str(a) for a in args])
        return Result(code, capsys.readouterr().err)

    return run


def assert_one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def snapshot(run: Path) -> dict:
    return {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()}


def scalars(read_events, run: Path) -> dict:
    """Every scalar tag's (step, value) points, but perf/*, which is sampled by the clock."""
    acc = read_events(run)
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]
            if not tag.startswith("perf/")}


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    """A finished 3-epoch run, copied by the tests that damage it."""
    root = tmp_path_factory.mktemp("trust")
    assert main(["train", "--runs-dir", str(root), "--name", "iris", "--set", "train.epochs=3",
                 "--set", "log.tensorboard=false", *IRIS]) == 0
    return root / "iris"


def copy_of(run: Path, tmp_path: Path) -> Path:
    target = tmp_path / run.name
    shutil.copytree(run, target)
    return target


# -- 1. a run killed (or diverged) before its first checkpoint starts again from step 0 ----------

KILL = textwrap.dedent("""
    import os, signal, sys, time
    from zerotune.cli.main import main
    from zerotune.train.callbacks import Callback
    import zerotune.pipeline.train as api

    class KillAt(Callback):  # SIGKILL after step 3: events are on disk, no checkpoint yet
        def on_step_end(self, state):
            if state.step == 3:
                time.sleep(1.5)  # the event writer flushes on its own thread every 0.1 s
                os.kill(os.getpid(), signal.SIGKILL)

    train = api.train
    api.train = lambda config, **kw: train(config, callbacks=[KillAt()], **kw)
    main(sys.argv[1:])
""")


def test_run_killed_before_its_first_checkpoint_starts_again(tmp_path, read_events, zt):
    args = ["--set", "train.epochs=2", "--set", "log.flush_secs=0.1", *IRIS]
    assert zt("train", "--runs-dir", str(tmp_path), "--name", "reference", *args).returncode == 0
    killed = subprocess.run([sys.executable, "-c", KILL, "train", "--runs-dir", str(tmp_path), "--name", "killed",
                             *args], capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    run = tmp_path / "killed"
    assert not (run / "checkpoints" / "last").exists() and list(run.glob("events.out.tfevents.*"))

    proc = zt("train", "--resume", str(run))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"{run} has no checkpoint yet: training it again from step 0 "
                                                f"with its config.yaml"]
    # As if it had never been killed: the same weights, and each point once in TensorBoard.
    ref_w, w = (load_file(str(r / "checkpoints" / "last" / "model.safetensors")) for r in (tmp_path / "reference", run))
    assert all(torch.equal(ref_w[k], w[k]) for k in ref_w)
    ref, got = scalars(read_events, tmp_path / "reference"), scalars(read_events, run)
    assert ref.keys() == got.keys()
    for tag in ref:
        assert [s for s, _ in got[tag]] == [s for s, _ in ref[tag]], tag
    assert got["train/loss"] == ref["train/loss"]


KILL_IN_FIRST_SAVE = textwrap.dedent("""
    import importlib, os, signal, sys
    from pathlib import Path
    from zerotune.cli.main import main

    ckpt = importlib.import_module("zerotune.train.checkpoint")  # (zerotune.train is also the function)

    save = ckpt.save_checkpoint

    def save_then_die_after_best(path, *args, **kwargs):  # SIGKILL between the first save's best and last
        save(path, *args, **kwargs)
        if Path(path).name == "best":
            os.kill(os.getpid(), signal.SIGKILL)

    ckpt.save_checkpoint = save_then_die_after_best
    main(sys.argv[1:])
""")


def test_run_killed_between_best_and_last_of_its_first_save_starts_again(tmp_path, zt):
    """The first save's best and last appear together: a kill between them leaves neither, so the run is
    new, not damaged, and trains to the uninterrupted run's weights."""
    args = ["--set", "train.epochs=2", "--set", "log.tensorboard=false", *IRIS]
    assert zt("train", "--runs-dir", str(tmp_path), "--name", "reference", *args).returncode == 0
    killed = subprocess.run([sys.executable, "-c", KILL_IN_FIRST_SAVE, "train", "--runs-dir", str(tmp_path),
                             "--name", "killed", *args], capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    run = tmp_path / "killed"
    assert not (run / "checkpoints").exists() and list(run.glob(".checkpoints.tmp-*"))
    proc = zt("train", "--resume", str(run))
    assert proc.returncode == 0, proc.stderr
    assert "no checkpoint yet: training it again from step 0" in proc.stderr
    assert not list(run.glob(".checkpoints.tmp-*"))
    for name in ("best", "last"):
        ref_w, w = (load_file(str(r / "checkpoints" / name / "model.safetensors")) for r in (tmp_path / "reference", run))
        assert ref_w.keys() == w.keys() and all(torch.equal(ref_w[k], w[k]) for k in ref_w)


def test_run_diverged_before_its_first_checkpoint_starts_again(tmp_path, zt):
    recipe = str(ROOT / "recipes" / "diabetes_linear.yaml")
    proc = zt("train", recipe, "--runs-dir", str(tmp_path), "--name", "d", "--no-progress",
              "--set", "optim.lr=10", "--set", "train.epochs=20", "--set", "log.tensorboard=false")
    assert_one_line_error(proc, "lower optim.lr")
    run = tmp_path / "d"
    assert not (run / "checkpoints" / "last").exists()
    again = zt("train", "--resume", str(run), "--set", "optim.lr=0.1")
    assert again.returncode == 0, again.stderr
    assert "no checkpoint yet: training it again from step 0" in again.stderr
    assert "lr: 0.1" in (run / "config.yaml").read_text()
    assert json.loads((run / "metrics.json").read_text())["training"]["steps"] == 20
    # Where it lives cannot change.
    assert_one_line_error(zt("train", "--resume", str(run), "--set", f"log.dir={tmp_path}"), "log.dir")


def test_finetune_without_checkpoint_starts_again(iris_run, tmp_path, read_events, zt):
    ft = ["--from", str(iris_run), "--runs-dir", str(tmp_path), "--set", "data.name=iris", "--set", "train.epochs=2",
          "--set", "train.deterministic=true", "--set", "train.threads=1", "--set", "finetune.strategy=head",
          "--no-progress"]
    assert zt("finetune", *ft, "--name", "reference").returncode == 0
    assert zt("finetune", *ft, "--name", "cut").returncode == 0
    run = tmp_path / "cut"
    shutil.rmtree(run / "checkpoints")  # as a kill before the first checkpoint leaves it, stale events and all
    (run / "metrics.json").unlink()
    proc = zt("finetune", "--resume", str(run))
    assert proc.returncode == 0, proc.stderr
    assert "no checkpoint yet: training it again from step 0" in proc.stderr
    ref, got = scalars(read_events, tmp_path / "reference"), scalars(read_events, run)
    assert got["train/loss"] == ref["train/loss"]
    assert got.keys() == ref.keys()


# -- 2. a failed command changes nothing on disk ----------------------------------------------


@pytest.mark.parametrize("damage", ["model.safetensors", "state.json", "optimizer.safetensors"])
def test_failed_resume_leaves_the_run_as_it_was(iris_run, tmp_path, damage, zt):
    run = copy_of(iris_run, tmp_path)
    (run / "checkpoints" / "last" / damage).write_bytes(b"\x00not what it should be")
    before = snapshot(run)
    proc = zt("train", "--resume", str(run), "--set", "train.epochs=5")
    assert_one_line_error(proc, damage)
    assert snapshot(run) == before  # config.yaml still says 3 epochs


@pytest.mark.parametrize("command", ["train", "finetune", "distill"])
@pytest.mark.parametrize("flag,value", [("--name", "other"), ("--runs-dir", "elsewhere"), ("--test", "t.txt")])
def test_flags_that_do_not_apply_to_a_resumed_run_are_refused(iris_run, tmp_path, zt, command, flag, value):
    run = copy_of(iris_run, tmp_path)
    before = snapshot(run)
    proc = zt(command, "--resume", run, flag, tmp_path / value, "--set", "train.epochs=5")
    assert_one_line_error(proc, f"{flag} cannot be given with --resume")
    assert snapshot(run) == before
    assert [p.name for p in tmp_path.iterdir()] == [run.name]  # nothing made where --runs-dir pointed


def test_no_progress_applies_to_a_resumed_run(iris_run, tmp_path, zt):
    run = copy_of(iris_run, tmp_path)
    assert zt("train", "--resume", run, "--set", "log.progress=true", "--set", "train.epochs=4").returncode == 0
    assert "progress: true" in (run / "config.yaml").read_text()
    assert zt("train", "--resume", run, "--no-progress", "--set", "train.epochs=5").returncode == 0
    config = (run / "config.yaml").read_text()
    assert "progress: false" in config and "epochs: 5" in config


# -- 3. state.json is validated like the config ------------------------------------------------


def _bad_rng_python(s):
    s["rng"]["python"][1] = s["rng"]["python"][1][:5]


def _bad_rng_numpy(s):
    s["rng"]["numpy"][0] = "XYZ"


def _numpy_rng_position_past_its_state(s):  # numpy itself would read past its array and crash
    s["rng"]["numpy"][2] = 10**6


STATE_DAMAGE = {
    "fractional step": (lambda s: s["progress"].update(step=2.5), "progress.step"),
    "step as text": (lambda s: s["progress"].update(step="3"), "progress.step"),
    "negative step": (lambda s: s["progress"].update(step=-1), "progress.step"),
    "missing progress": (lambda s: s.pop("progress"), "progress"),
    "batch past the epoch": (lambda s: s["progress"].update(batch_in_epoch=10_000), "batch_in_epoch"),
    "bad python rng": (_bad_rng_python, "rng"),
    "bad numpy rng": (_bad_rng_numpy, "rng"),
    "numpy rng position": (_numpy_rng_position_past_its_state, "rng.numpy.2"),
    "callbacks not an object": (lambda s: s.update(callbacks=[1]), "callbacks"),
}


@pytest.mark.parametrize("case", [*STATE_DAMAGE, "a list"])
def test_bad_state_json_is_refused_in_one_line(iris_run, tmp_path, zt, case):
    run = copy_of(iris_run, tmp_path)
    file = run / "checkpoints" / "last" / "state.json"
    state = json.loads(file.read_text())
    if case == "a list":
        state, needle = [state], "must hold an object, not list"
    else:
        change, needle = STATE_DAMAGE[case]
        change(state)
    file.write_text(json.dumps(state))
    write_checksums(file.parent)  # as if saved so: the content is validated, not only its checksum
    before = snapshot(run)
    proc = zt("train", "--resume", run, "--set", "train.epochs=5")
    assert_one_line_error(proc, f"error: checkpoint {file.parent} is invalid: state.json", needle)
    assert snapshot(run) == before


def test_bad_torch_rng_state_is_refused(iris_run, tmp_path, zt):
    from safetensors.torch import save_file

    run = copy_of(iris_run, tmp_path)
    file = run / "checkpoints" / "last" / "optimizer.safetensors"
    tensors = load_file(str(file))
    tensors["rng.torch"] = tensors["rng.torch"][:100].clone()
    save_file(tensors, str(file))
    write_checksums(file.parent)
    assert_one_line_error(zt("train", "--resume", run), "rng.torch does not load")


# -- 4. on divergence, `last` keeps the last sound state ---------------------------------------


def test_divergence_keeps_the_last_sound_checkpoint(tmp_path, zt):
    recipe = str(ROOT / "recipes" / "diabetes_linear.yaml")
    proc = zt("train", recipe, "--runs-dir", str(tmp_path), "--name", "d", "--no-progress", "--set", "optim.lr=10",
              "--set", "train.checkpoint_every_seconds=0", "--set", "log.tensorboard=false")
    assert_one_line_error(proc, "blew up", "running median", "lower optim.lr")
    last = tmp_path / "d" / "checkpoints" / "last"
    weights = load_file(str(last / "model.safetensors"))
    assert max(float(w.abs().max()) for w in weights.values()) < 1e3  # not the 1e17 of the blown-up steps
    assert json.loads((last / "state.json").read_text())["progress"]["step"] == 1


def test_divergence_watch_counts_blow_ups_not_noise_near_zero():
    from zerotune.train.loop import Diverged, DivergenceWatch

    watch = DivergenceWatch(lr=0.1)
    for loss in (2.0, 1.5, 1.2, 1.0):
        watch.check(loss, "here")
    watch.check(900.0, "here")  # large, under 1e3x the median
    with pytest.raises(Diverged, match="blew up"):
        watch.check(1.3e3 * 1.35, "here")
    with pytest.raises(Diverged, match="nan"):
        DivergenceWatch(0.1).check(float("nan"), "here")
    near_zero = DivergenceWatch(0.1)
    for loss in (1e-7, 2e-7, 1e-7):
        near_zero.check(loss, "here")
    near_zero.check(1e-3, "here")  # 1e4x a median of 1e-7, but no blow-up


# -- 5. a monitor the task never produces ------------------------------------------------------


def test_unknown_monitor_is_refused_at_start(tmp_path, zt):
    proc = zt("train", "--runs-dir", str(tmp_path), "--set", "train.monitor=val/acuracy", *IRIS)
    assert_one_line_error(proc, "train.monitor 'val/acuracy'", "val/accuracy", "train/epoch_loss")
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


# -- 6. unreadable recipes and runs directories ------------------------------------------------


@pytest.mark.parametrize("name, content", [("latin1.yaml", b"data:\n  name: \xe9iris\n"),
                                           ("image.toml", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")])
def test_non_text_recipe_is_refused(tmp_path, zt, name, content):
    recipe = tmp_path / name
    recipe.write_bytes(content)
    assert_one_line_error(zt("train", recipe, "--runs-dir", tmp_path / "runs"), str(recipe), "not a UTF-8 text file")


def test_unwritable_runs_dir_is_refused(tmp_path, zt):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    proc = zt("train", "--runs-dir", str(blocker / "runs"), *IRIS)
    assert_one_line_error(proc, "cannot create run directory", str(blocker / "runs"))
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert_one_line_error(zt("train", "--runs-dir", str(locked), *IRIS), "cannot create run directory")


# -- 7. a fine-tune's default name says so -----------------------------------------------------


def test_finetune_default_name_says_finetune(iris_run, tmp_path, zt):
    proc = zt("finetune", "--from", str(iris_run), "--runs-dir", str(tmp_path), "--set", "data.name=iris",
              "--set", "train.epochs=1", "--set", "finetune.baseline=false", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    (run,) = tmp_path.iterdir()
    assert run.name.startswith("iris-mlp-finetune-"), run.name
