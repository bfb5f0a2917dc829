"""Distillation end to end: metrics, TensorBoard tags, eval and export of the student, bad teachers."""

import json

import pytest
import torch

from zerotune.cli.main import main
from zerotune.config import load_config
from zerotune.distill.targets import SoftTargets, batch_generator
from zerotune.modes.distill import Distill
from zerotune.pipeline.distill import distill
from zerotune.pipeline.train import prepare

STUDENT = ["data.name=digits", "data.augment.rotate_degrees=0", "data.augment.shift=0", "model.name=mlp",
           "model.hidden=[16]", "optim.name=adamw", "optim.lr=1e-2", "train.epochs=4", "train.batch_size=32",
           "train.threads=1", "distill.temperature=4", "distill.alpha=0.9", "log.progress=false", "log.graph=false",
           "log.embeddings=false", "log.images=false"]


@pytest.fixture(scope="module")
def distilled(cnn_run, tmp_path_factory):
    """(run directory, metrics) of the MLP distilled from `cnn_run` without augmentation (cached logits)."""
    from zerotune.config import load_config
    from zerotune.pipeline.distill import distill

    root = tmp_path_factory.mktemp("distill")
    result = distill(load_config(None, STUDENT + [f"log.dir={root}", "log.name=student"]), teacher=cnn_run)
    return result.run_dir, result.metrics


def test_student_learns_to_agree_with_its_teacher(distilled, cnn_run, read_events):
    run_dir, metrics = distilled
    d = metrics["distill"]
    assert d["teacher"] == str(cnn_run.resolve()) and d["teacher_logits"] == "cached"
    assert (d["temperature"], d["alpha"]) == (4.0, 0.9)
    assert d["student_parameters"] == 64 * 16 + 16 + 16 * 10 + 10
    assert d["parameter_ratio"] == pytest.approx(d["student_parameters"] / d["teacher_parameters"], abs=1e-4)
    agreement = [e.value for e in read_events(run_dir).Scalars("val/teacher_agreement")]
    assert len(agreement) == 4 and agreement[-1] > agreement[0] and agreement[-1] > 0.85
    assert metrics["test"]["teacher_agreement"] > 0.85 and metrics["test"]["accuracy"] > 0.8
    assert 0.8 < d["teacher_test_accuracy"] <= 1.0


def test_tensorboard_has_the_kl_and_hard_terms_next_to_the_usual_scalars(distilled, read_events):
    acc = read_events(distilled[0])
    scalars = set(acc.Tags()["scalars"])
    assert {"train/distill_kl", "train/distill_hard", "val/teacher_agreement", "train/loss", "val/accuracy"} <= scalars
    kl = [e.value for e in acc.Scalars("train/distill_kl")]
    hard = [e.value for e in acc.Scalars("train/distill_hard")]
    loss = [e.value for e in acc.Scalars("train/loss")]
    assert len(kl) == len(hard) == len(loss) and kl[-1] < kl[0] and hard[-1] < hard[0]
    assert "distill/setup/text_summary" in acc.Tags()["tensors"]


def test_cached_and_on_the_fly_teacher_logits(cnn_run, runs_dir):
    cached = prepare(load_config(None, STUDENT + [f"distill.teacher={cnn_run}"]))
    assert cached.augment is None and cached.data.train.cache is not None
    batches = cached.data.train.epoch_batches(0, 0, 32)
    x, t = batches[1]
    assert isinstance(t, SoftTargets) and torch.equal(t.labels, cached.data.train.y[batches.perm[32:64]])
    assert torch.allclose(t.teacher, cached.mode(Distill).teacher.logits(x), atol=1e-5)

    aug = prepare(load_config(None, STUDENT + [f"distill.teacher={cnn_run}", "data.augment.rotate_degrees=15"]))
    assert aug.augment is None and aug.data.train.cache is None  # the split augments, the trainer does not
    batches = aug.data.train.epoch_batches(0, 0, 32)
    x, t = batches[1]
    raw = aug.data.train.x[batches.perm[32:64]]
    assert not torch.allclose(x, raw)  # augmented ...
    assert torch.allclose(t.teacher, aug.mode(Distill).teacher.logits(x), atol=1e-5)  # ... and the teacher saw that batch
    again, _ = aug.data.train.epoch_batches(0, 0, 32)[1]
    assert torch.equal(x, again)  # a pure function of (seed, epoch, batch): resume-safe
    assert torch.equal(x, aug.data.train.augment(raw, batch_generator(0, 0, 1, x.device)))


def test_on_the_fly_run_records_it_and_resumes(cnn_run, runs_dir, capsys):
    config = load_config(None, STUDENT + [f"log.dir={runs_dir}", "data.augment.shift=0.1", "train.epochs=1",
                                          "log.tensorboard=false"])
    result = distill(config, teacher=cnn_run)
    assert result.metrics["distill"]["teacher_logits"] == "on the fly"
    assert main(["distill", "--resume", str(result.run_dir), "--set", "train.epochs=2"]) == 0
    assert "teacher logits on the fly" in capsys.readouterr().out
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert metrics["training"]["steps"] == 2 * result.steps and metrics["test"]["teacher_agreement"] > 0.5


def test_distilled_run_evaluates_and_exports_like_any_run(distilled, capsys):
    from zerotune.export import export_run, read_sidecar

    run_dir, metrics = distilled
    assert main(["eval", str(run_dir), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    exported = export_run(run_dir)
    side = read_sidecar(exported.path)
    assert exported.path.is_file() and exported.bytes > 1000
    assert side["source"]["model"] == "mlp" and [p["ok"] for p in side["parity"]] == [True]


@pytest.mark.parametrize("extra,cause", [
    (["data.classes=[0,1,2]"], "classes"),
    (["data.name=iris", "data.augment.rotate_degrees=0"], "data set 'digits'"),
])
def test_teacher_that_does_not_fit_is_one_line_and_exit_2(cnn_run, runs_dir, capsys, extra, cause):
    args = ["distill", "--teacher", str(cnn_run), "--runs-dir", str(runs_dir)]
    for o in STUDENT + extra:
        args += ["--set", o]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: teacher ") and cause in err and "\n" not in err
    assert not runs_dir.exists()  # nothing written


def test_missing_teacher_is_one_line_and_exit_2(runs_dir, tmp_path, capsys):
    args = ["distill", "--teacher", str(tmp_path / "nope"), "--runs-dir", str(runs_dir)]
    assert main(args + ["--set", "model.name=mlp"]) == 2
    err = capsys.readouterr().err.strip()
    assert "teacher run" in err and "does not exist" in err and "\n" not in err
    assert main(["distill", "--runs-dir", str(runs_dir)]) == 2
    assert "needs a teacher" in capsys.readouterr().err
    assert not runs_dir.exists()


@pytest.mark.parametrize("extra,cause", [
    (["data.augment.mixup_alpha=0.2"], "mixup_alpha and cutmix_alpha are not supported with a teacher"),
    (["train.sampler=balanced"], 'train.sampler = "balanced" is not supported with a teacher'),
])
def test_batches_the_teacher_cannot_follow_are_one_line_and_exit_2(cnn_run, runs_dir, capsys, extra, cause):
    args = ["distill", "--teacher", str(cnn_run), "--runs-dir", str(runs_dir)]
    for o in STUDENT + extra:
        args += ["--set", o]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert cause in err and "\n" not in err
    assert not runs_dir.exists()
