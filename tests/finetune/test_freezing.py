"""Layer groups, the freeze plan of every strategy and layer-wise learning rates, without training."""

import pytest
import torch

from zerotune.config import FinetuneConfig
from zerotune.errors import UserError
from zerotune.finetune.freezing import FreezePlan, count_parameters, layer_groups
from zerotune.finetune.lr_groups import optimizer_groups
from zerotune.finetune.unfreezing import first_epoch_training, unfrozen_blocks
from zerotune.models import create_model


def cnn():
    return create_model("cnn", input_shape=(1, 8, 8), num_outputs=5, channels=[8, 16, 16], dense=32, batch_norm=True)


def plan(model, **kw):
    return FreezePlan(model, FinetuneConfig(source="x", **kw))


def test_cnn_blocks_are_its_layers_with_batch_norm_joined_and_the_head_last():
    groups = layer_groups(cnn())
    assert [g.name for g in groups] == ["features.0", "features.4", "features.8", "features.12", "head"]
    assert groups[0].params == ("features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias")
    assert groups[-1].params == ("head.weight", "head.bias")


def test_every_parameter_is_in_exactly_one_group():
    for model in (cnn(), create_model("resnet", input_shape=(3, 8, 8), num_outputs=3),
                  create_model("mlp", input_shape=(13,), num_outputs=3, batch_norm=True)):
        names = [n for g in layer_groups(model) for n in g.params]
        assert sorted(names) == sorted(n for n, _ in model.named_parameters())


def test_gradual_unfreezing_is_a_pure_function_of_the_epoch():
    assert [unfrozen_blocks(e, 4, every=2) for e in range(10)] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert [unfrozen_blocks(e, 4, every=1, start=2) for e in range(4)] == [2, 3, 4, 4]
    assert [first_epoch_training(b, 4, every=2) for b in range(4)] == [8, 6, 4, 2]
    model = cnn()
    a, b = plan(model, strategy="gradual", unfreeze_every=2), plan(cnn(), strategy="gradual", unfreeze_every=2)
    groups = layer_groups(model)
    for epoch in range(10):
        assert a.trainable_at(epoch) == b.trainable_at(epoch)  # nothing but the epoch decides
        a.apply(model, epoch)
        trains = {n for n, p in model.named_parameters() if p.requires_grad}
        expected = {n for g in groups[len(groups) - 1 - unfrozen_blocks(epoch, 4, 2):] for n in g.params}
        assert trains == expected
    assert a.ever == frozenset(n for n, _ in model.named_parameters())


def test_head_only_and_last_blocks_and_layer_indices_and_patterns():
    model = cnn()
    groups = {g.name: set(g.params) for g in layer_groups(model)}
    assert plan(model, strategy="head").ever == groups["head"]
    assert plan(model, strategy="partial", train_blocks=1).ever == groups["head"] | groups["features.12"]
    frozen = plan(model, strategy="partial", freeze_layers=[0, -1]).ever
    assert frozen == groups["head"] | groups["features.4"] | groups["features.8"]
    p = plan(model, strategy="full", freeze_patterns=["features.0.*", "*.bias"])
    assert not any(n.startswith("features.0.") or n.endswith(".bias") for n in p.ever)
    p.apply(model, 0)
    trainable, frozen_count = count_parameters(model)
    assert trainable == sum(t.numel() for n, t in model.named_parameters() if n in p.ever)
    assert trainable + frozen_count == sum(t.numel() for t in model.parameters())


@pytest.mark.parametrize("kw", [{"strategy": "partial", "freeze_patterns": ["*"]},
                                {"strategy": "head", "freeze_patterns": ["head.*"]}])
def test_freezing_everything_is_refused(kw):
    with pytest.raises(UserError, match="every parameter is frozen .*nothing is left to train"):
        plan(cnn(), **kw)


def test_layer_index_out_of_range_names_the_blocks():
    with pytest.raises(UserError, match="out of range: the model has 4 blocks below the head .*0: features.0"):
        plan(cnn(), strategy="partial", freeze_layers=[4])


def test_layerwise_rates_decay_from_the_head_down_and_skip_never_trained_parameters():
    model = cnn()
    p = plan(model, strategy="partial", train_blocks=2, lr_decay=0.5)
    groups = optimizer_groups(model, p.groups, p.ever, 1e-2, 0.5, 0.01)
    rates = {g["name"]: g["lr"] for g in groups}
    assert rates == {"head": 1e-2, "features.12": 5e-3, "features.8": 2.5e-3}
    assert groups[0]["name"] == "head"  # the loop reports the first group's rate as train/lr
    assert all(g["weight_decay"] == (0.01 if g["params"][0].ndim >= 2 else 0.0) for g in groups)
    counted = sum(t.numel() for g in groups for t in g["params"])
    assert counted == sum(t.numel() for n, t in model.named_parameters() if n in p.ever)


def test_frozen_batch_norm_keeps_its_running_statistics():
    model = cnn()
    plan(model, strategy="head").apply(model, 0)
    bn = model.features[1]
    before = bn.running_mean.clone()
    model(torch.randn(8, 1, 8, 8))
    assert not bn.training and torch.equal(bn.running_mean, before)
