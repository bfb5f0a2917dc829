"""Class imbalance: data.class_fraction, train.class_weights (against scikit-learn) and the balanced sampler."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from sklearn.utils.class_weight import compute_class_weight

import zerotune
from zerotune.config import load_config
from zerotune.data import build_data
from zerotune.data.batches import Split
from zerotune.errors import UserError
from zerotune.pipeline.train import prepare

IMBALANCED = ["data.name=digits", "data.class_fraction={3: 0.05}", "log.progress=false"]


def test_class_fraction_cuts_one_class_of_the_training_split_only():
    plain = build_data(load_config(None, ["data.name=digits"]).data)
    cut = build_data(load_config(None, IMBALANCED).data)
    before, after = (np.bincount(d.train.y.numpy()) for d in (plain, cut))
    assert after[3] == round(0.05 * before[3]) and (np.delete(after, 3) == np.delete(before, 3)).all()
    assert torch.equal(cut.val.y, plain.val.y) and torch.equal(cut.test.y, plain.test.y)


def test_balanced_weights_are_scikit_learns_and_reach_the_loss():
    run = prepare(load_config(None, IMBALANCED + ["train.class_weights=balanced", "model.name=mlp"]))
    y = run.data.train.y.numpy()
    expected = compute_class_weight("balanced", classes=np.arange(10), y=y)
    assert np.allclose(run.task.class_weights.numpy(), expected)
    assert expected[3] > 5 * expected[0]  # the cut class weighs most
    out, target = torch.randn(8, 10), torch.arange(8)
    reference = torch.nn.CrossEntropyLoss(weight=torch.tensor(expected, dtype=torch.float32))(out, target)
    assert torch.allclose(run.task.loss(out, target), reference)


def test_a_list_of_weights_must_have_one_per_class():
    run = prepare(load_config(None, ["data.name=iris", "model.name=mlp", "train.class_weights=[1, 2, 0.5]"]))
    assert run.task.class_weights.tolist() == [1, 2, 0.5]
    with pytest.raises(UserError, match="has 2 weights but the data has 3 classes"):
        prepare(load_config(None, ["data.name=iris", "model.name=mlp", "train.class_weights=[1, 2]"]))
    with pytest.raises(UserError, match="class_weights"):
        load_config(None, ["train.class_weights=[1, -2]"])
    with pytest.raises(UserError, match="classification, not regression"):
        prepare(load_config(None, ["data.name=diabetes", "model.name=mlp", "train.class_weights=balanced"]))


def test_bad_weights_on_the_command_line_are_one_line_and_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "zerotune", "train", "--set", "data.name=iris", "--set",
                           "model.name=mlp", "--set", "train.class_weights=[1, 2]", "--runs-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "one positive weight per class" in proc.stderr
    assert not any(tmp_path.iterdir())


def test_the_balanced_sampler_draws_each_class_about_equally_and_deterministically():
    y = torch.cat([torch.zeros(950), torch.ones(50)]).long()
    split = Split(torch.randn(1000, 2), y).balanced()
    perm = split.epoch_batches(seed=3, epoch=1, batch_size=100).perm
    counts = torch.bincount(y[perm])
    assert len(perm) == 1000 and 420 < counts[1] < 580  # 50/50 within about 5 standard deviations
    assert torch.equal(perm, split.epoch_batches(seed=3, epoch=1, batch_size=100).perm)
    assert not torch.equal(perm, split.epoch_batches(seed=3, epoch=2, batch_size=100).perm)


def test_a_run_with_the_balanced_sampler_resumes_exactly(runs_dir):
    settings = IMBALANCED + ["train.sampler=balanced", "model.name=mlp", "model.hidden=[32]", "train.epochs=3",
                             "train.deterministic=true", "train.threads=1", "log.tensorboard=false",
                             f"log.dir={runs_dir}"]
    reference = zerotune.train(load_config(None, settings + ["log.name=reference"]))
    cut = zerotune.train(load_config(None, settings + ["log.name=cut", "train.max_steps=30"]))  # mid-epoch 2
    assert cut.steps == 30
    resumed = zerotune.train(None, resume=cut.run_dir, resume_overrides=["train.max_steps=null"])
    assert resumed.steps == reference.steps
    ref_w, res_w = (load_file(str(r.run_dir / "checkpoints" / "last" / "model.safetensors")) for r in (reference, resumed))
    assert all(torch.equal(ref_w[k], res_w[k]) for k in ref_w)


def test_the_sampler_is_for_classification():
    with pytest.raises(UserError, match="sampler 'balanced' applies to classification"):
        prepare(load_config(None, ["data.name=diabetes", "model.name=mlp", "train.sampler=balanced"]))
