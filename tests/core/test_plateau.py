"""The plateau schedule against torch's ReduceLROnPlateau, and inside a real run."""

import pytest
import torch

import zerotune
from zerotune.config import load_config
from zerotune.errors import UserError
from zerotune.train.callbacks import Callback
from zerotune.train.plateau import Plateau

SEQUENCE = [1.0, 0.9, 0.95, 0.91, 0.9, 0.89999, 0.7, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.69, 0.7, 0.7]


@pytest.mark.parametrize("mode, sign", [("min", 1.0), ("max", -1.0)])
@pytest.mark.parametrize("patience, factor, min_ratio", [(0, 0.5, 0.0), (2, 0.1, 0.0), (1, 0.5, 0.2)])
def test_matches_torch_reduce_lr_on_plateau(mode, sign, patience, factor, min_ratio):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode=mode, factor=factor, patience=patience,
                                                     threshold=1e-3, min_lr=min_ratio, eps=0.0)
    ours = Plateau(patience, factor, 1e-3, min_ratio, mode)
    for value in SEQUENCE:
        # torch's relative threshold in "max" mode is meant for positive metrics; so is this sequence
        v = value if mode == "min" else 2.0 - value
        ref.step(v)
        ours.update(v)
        assert ours.multiplier == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)
    assert ours.multiplier < 1.0


def test_nan_or_missing_counts_as_no_improvement():
    p = Plateau(1, 0.5, 0.0, 0.0, "min")
    for v in (1.0, float("nan"), None):
        p.update(v)
    assert p.multiplier == 0.5 and p.best == 1.0


class _Rates(Callback):
    def __init__(self):
        self.rates = {}

    def on_step_end(self, state):
        self.rates[state.epoch] = state.lr


def test_run_lowers_rate_after_stalls(runs_dir):
    # A relative threshold of 0.9 makes every evaluation after the first a stall: with patience 1,
    # the rate falls by `factor` after every second stall, never below min_lr_ratio x lr.
    rates = _Rates()
    cfg = load_config(None, ["data.name=iris", "model.name=logistic_regression", "train.epochs=7",
                             "schedule.name=plateau", "schedule.patience=1", "schedule.factor=0.5",
                             "schedule.threshold=0.9", "schedule.min_lr_ratio=0.3", "optim.lr=0.1",
                             "log.progress=false", "log.tensorboard=false", f"log.dir={runs_dir}"])
    zerotune.train(cfg, callbacks=[rates])
    expected = [0.1, 0.1, 0.1, 0.05, 0.05, 0.03, 0.03]  # epoch 3: two stalls after the first evaluation
    assert [rates.rates[e] for e in range(7)] == pytest.approx(expected)


def test_bad_values_are_one_line_errors():
    for bad in ("schedule.factor=1", "schedule.factor=0", "schedule.patience=-1", "schedule.threshold=-0.1"):
        with pytest.raises(UserError, match="schedule."):
            load_config(None, ["schedule.name=plateau", bad])
