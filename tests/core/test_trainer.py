"""The Trainer's contract with callbacks: the events and their order, and the learning rate it reports."""

import pytest
import torch

import zerotune
from zerotune.config import load_config
from zerotune.data import build_data
from zerotune.runload.load import build_model_for
from zerotune.tasks.supervised import make_task
from zerotune.train.callbacks import Callback
from zerotune.train.loop import fit
from zerotune.models.groups import param_groups
from zerotune.train.optim import lr_multiplier

# iris has 105 training rows: 3 optimizer steps per epoch of 35
TINY = ["data.name=iris", "model.name=mlp", "model.hidden=[16]", "train.epochs=2", "train.batch_size=35",
        "log.progress=false", "log.tensorboard=false", "train.threads=1"]


class Crash(Exception):
    """Stands for a killed process."""


class Recorder(Callback):
    def __init__(self, crash_at: int | None = None):
        self.events, self.rates, self.crash_at = [], [], crash_at

    def on_fit_start(self, state):
        self.events.append("fit_start")

    def on_epoch_start(self, state):
        self.events.append(f"epoch_start {state.epoch}")

    def on_step_end(self, state):
        self.events.append(f"step {state.step}")
        self.rates.append((state.step, state.lr, state.lr_multiplier))
        if state.step == self.crash_at:
            raise Crash

    def on_eval_end(self, state):
        self.events.append("eval_end")

    def on_epoch_end(self, state):
        self.events.append(f"epoch_end {state.epoch}")

    def on_fit_end(self, state):
        self.events.append("fit_end")


EPOCH_1 = ["epoch_start 1", "step 4", "step 5", "step 6", "eval_end", "epoch_end 2", "fit_end"]


def test_events_in_order_and_the_schedule_multiplier_in_the_state(tmp_path):
    cfg = load_config(None, TINY + ["schedule.name=cosine", "schedule.warmup_steps=2", "optim.lr=0.02"])
    data = build_data(cfg.data)
    task = make_task(data.meta, cfg.train, cfg.data)
    rec = Recorder()
    state = fit(build_model_for(cfg, data.meta), data, task, cfg.train, tmp_path, torch.device("cpu"), [rec],
                optim=cfg.optim, schedule=cfg.schedule, log=cfg.log)
    assert rec.events == ["fit_start", "epoch_start 0", "step 1", "step 2", "step 3", "eval_end", "epoch_end 1",
                          *EPOCH_1]
    assert state.step == 6 and state.epoch == 2
    for step, lr, multiplier in rec.rates:
        assert multiplier == lr_multiplier(cfg.schedule, step - 1, 6, 3)
        assert lr == pytest.approx(0.02 * multiplier, rel=1e-12)
    assert rec.rates[0][2] == 0.5  # warmup: the first of two steps runs at half the rate


def test_a_run_resumed_mid_epoch_does_not_start_that_epoch_again(runs_dir):
    cfg = load_config(None, TINY + ["train.checkpoint_every_steps=2", f"log.dir={runs_dir}", "log.name=r"])
    with pytest.raises(Crash):
        zerotune.train(cfg, callbacks=[Recorder(crash_at=3)])  # the last checkpoint is step 2's, mid-epoch
    rec = Recorder()
    result = zerotune.train(None, resume=runs_dir / "r", callbacks=[rec])
    assert result.steps == 6
    assert rec.events == ["fit_start", "step 3", "eval_end", "epoch_end 1", *EPOCH_1]


def test_param_groups_decay_matrices_only_and_carry_extra_keys():
    w, b = torch.nn.Parameter(torch.ones(2, 3)), torch.nn.Parameter(torch.ones(3))
    decayed, plain = param_groups([w, b], 0.1, lr=0.5, name="head")
    assert decayed == {"params": [w], "weight_decay": 0.1, "lr": 0.5, "name": "head"}
    assert plain == {"params": [b], "weight_decay": 0.0, "lr": 0.5, "name": "head"}
    assert param_groups([b], 0.1) == [{"params": [b], "weight_decay": 0.0}]  # an empty half is left out
