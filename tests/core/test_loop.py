"""Training-loop features: accumulation, clipping, schedules, early stopping, precision, losses."""

import math

import pytest
import torch
from safetensors.torch import load_file

import zerotune
from zerotune.config import ScheduleConfig, load_config
from zerotune.errors import UserError
from zerotune.train.optim import lr_multiplier

TINY = ["data.name=iris", "model.name=mlp", "model.hidden=[16]", "train.epochs=3", "log.progress=false",
        "train.deterministic=true", "train.threads=1", "train.monitor=val/loss"]


def _run(runs_dir, name, *overrides):
    return zerotune.train(load_config(None, TINY + [f"log.dir={runs_dir}", f"log.name={name}", *overrides]))


def _last(result):
    return load_file(str(result.run_dir / "checkpoints" / "last" / "model.safetensors"))


def test_same_seed_same_weights_other_seed_other_weights(runs_dir):
    a, b, c = (_run(runs_dir, n, f"train.seed={s}") for n, s in (("a", 1), ("b", 1), ("c", 2)))
    assert all(torch.equal(_last(a)[k], _last(b)[k]) for k in _last(a))
    assert not all(torch.equal(_last(a)[k], _last(c)[k]) for k in _last(a))


def test_gradient_accumulation_matches_the_large_batch(runs_dir):
    # iris has 105 training rows: 3 equal micro-batches of 35 accumulated make one full-batch step.
    whole = _run(runs_dir, "whole", "train.batch_size=105", "optim.name=sgd", "optim.momentum=0")
    accum = _run(runs_dir, "accum", "train.batch_size=35", "train.accumulate=3", "optim.name=sgd", "optim.momentum=0")
    assert whole.steps == accum.steps == 3
    for k in _last(whole):
        assert torch.allclose(_last(whole)[k], _last(accum)[k], atol=1e-6), k


def test_early_stopping_stops_and_says_why(runs_dir):
    r = _run(runs_dir, "es", "train.epochs=200", "optim.lr=1e-6", "train.early_stopping={patience: 2, min_delta: 0.1}",
             "train.monitor=val/loss")
    assert r.metrics["training"]["epochs"] == 3
    assert "did not improve for 2 evaluations" in r.stop_reason


@pytest.mark.parametrize("loss", ["cross_entropy", "bce", "hinge"])
def test_classification_losses_learn_iris(loss, runs_dir):
    r = _run(runs_dir, loss, f"train.loss={loss}", "train.epochs=30", "optim.lr=0.01")
    assert r.metrics["test"]["accuracy"] >= 0.9


def test_regression_loss_must_fit_the_task(runs_dir):
    with pytest.raises(UserError, match="train.loss 'mse' does not fit classification; allowed: auto, cross_entropy"):
        _run(runs_dir, "x", "train.loss=mse")


@pytest.mark.parametrize("opt, lr", [("sgd", 0.1), ("adam", 0.01), ("adamw", 0.01), ("rmsprop", 0.01)])
def test_every_optimizer_trains(opt, lr, runs_dir):
    r = _run(runs_dir, opt, f"optim.name={opt}", f"optim.lr={lr}", "train.epochs=30", "optim.l1=1e-5", "optim.l2=1e-4")
    assert r.metrics["test"]["accuracy"] >= 0.85


def test_bf16_autocast_and_clipping_on_cpu(runs_dir):
    r = _run(runs_dir, "bf16", "train.precision=bf16", "optim.clip_norm=0.5", "optim.clip_value=0.1",
             "train.epochs=20", "optim.lr=0.01")
    assert r.metrics["test"]["accuracy"] >= 0.85


def test_fp16_needs_cuda(runs_dir):
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(UserError, match="fp16' needs a CUDA device"):
        _run(runs_dir, "fp16", "train.precision=fp16")


def test_divergence_stops_with_advice(runs_dir):
    with pytest.raises(UserError, match="lower optim.lr"):
        _run(runs_dir, "div", "data.name=diabetes", "optim.name=sgd",
             "optim.lr=10", "optim.momentum=0.99", "train.epochs=50", "train.batch_size=8")


def _mult(name, step, total=100, spe=10, **kw):
    return lr_multiplier(ScheduleConfig(name=name, **kw), step, total, spe)


def test_schedules():
    assert _mult("constant", 50) == 1.0
    assert _mult("step", 19, step_epochs=2, gamma=0.5) == 1.0 and _mult("step", 20, step_epochs=2, gamma=0.5) == 0.5
    assert math.isclose(_mult("exponential", 30, gamma=0.9), 0.9 ** 3)
    assert _mult("cosine", 0) == 1.0 and math.isclose(_mult("cosine", 50), 0.5) and _mult("cosine", 100) == 0.0
    assert math.isclose(_mult("cosine", 100, min_lr_ratio=0.1), 0.1)
    assert [_mult("cosine", s, warmup_steps=4) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]


def test_onecycle_matches_torch():
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ref = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=100, anneal_strategy="cos",
                                              cycle_momentum=False)
    ours = []
    for step in range(100):
        ours.append(0.1 * _mult("onecycle", step))
        assert math.isclose(opt.param_groups[0]["lr"], ours[-1], rel_tol=1e-6, abs_tol=1e-12), step
        opt.step()
        ref.step() if step < 99 else None


@pytest.mark.parametrize("interval, expected_last_saves", [(0, 10), (1000, 1)])
def test_epoch_checkpoints_are_throttled_by_time(interval, expected_last_saves, runs_dir, monkeypatch):
    from zerotune.train import checkpoint as ckpt

    saved = []
    original = ckpt.CheckpointWriter.submit
    def submit(self, path, *args, **kwargs):
        # the first save writes best and last together, into the checkpoints folder
        saved.extend(["best", "last"] if path.name == "checkpoints" else [path.name])
        return original(self, path, *args, **kwargs)

    monkeypatch.setattr(ckpt.CheckpointWriter, "submit", submit)
    r = _run(runs_dir, f"t{interval}", "train.epochs=10", f"train.checkpoint_every_seconds={interval}")
    assert saved.count("last") == expected_last_saves
    assert 1 <= saved.count("best") <= expected_last_saves  # the best is flushed with each `last`
    state = ckpt.read_state(r.run_dir / "checkpoints" / "last")
    assert state["progress"]["step"] == r.steps and state["progress"]["num_evals"] == 10
