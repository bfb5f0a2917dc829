"""The VGG family: the paper's layer counts, any input size, options validated by the registry."""

import pytest
import torch
from torch import nn

from zerotune.config import load_config
from zerotune.errors import UserError
from zerotune.finetune.freezing import layer_groups
from zerotune.models import create_model


def _weight_layers(model: nn.Module) -> int:
    return sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.modules())


@pytest.mark.parametrize("depth", [11, 13, 16, 19])
def test_depth_counts_the_weight_layers_as_in_the_paper(depth):
    # The paper's depth counts convolutions plus 3 dense layers; the 32x32 port has 2 (dense and head).
    model = create_model("vgg", input_shape=(3, 32, 32), num_outputs=10, depth=depth, width=0.125)
    assert _weight_layers(model) == depth - 1
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == depth - 3


def test_vgg16_on_cifar_has_the_parameter_count_of_the_usual_port():
    model = create_model("vgg", input_shape=(3, 32, 32), num_outputs=10, depth=16, dense=0, dropout=0)
    # kuangliu/pytorch-cifar's VGG('VGG16'), 13 conv+BN layers and one Linear(512, 10), has 14,728,266;
    # here the convolutions have no bias (the batch norm after each has one): 4,224 fewer.
    assert sum(p.numel() for p in model.parameters()) == 14_728_266 - 4_224


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 28, 28), (1, 8, 8), (3, 1, 1), (3, 45, 17)])
def test_any_input_size_gives_one_prediction_per_example(shape):
    model = create_model("vgg", input_shape=shape, num_outputs=7, depth=11, width=0.25).eval()
    assert model(torch.randn(2, *shape)).shape == (2, 7)


def test_width_scales_channels_and_dense_zero_drops_the_hidden_layer():
    model = create_model("vgg", input_shape=(3, 32, 32), num_outputs=10, depth=11, width=0.5, dense=0)
    convs = [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs == [32, 64, 128, 128, 256, 256, 256, 256]
    assert [m.in_features for m in model.modules() if isinstance(m, nn.Linear)] == [256]


def test_fine_tuning_sees_the_five_stages_then_dense_then_head():
    model = create_model("vgg", input_shape=(3, 32, 32), num_outputs=10, depth=16, width=0.125)
    names = [g.name for g in layer_groups(model)]
    assert names == ["features.0", "features.1", "features.2", "features.3", "features.4", "features.8", "head"]


@pytest.mark.parametrize("override, expected", [
    ("model.depth=12", "model.depth: Input should be 11, 13, 16 or 19"),
    ("model.width=0", "model.width: Input should be greater than 0"),
    ("model.dropout=1", "model.dropout: Input should be less than 1"),
    ("model.channels=[8]", "model.channels: unknown option (options: depth, width, dense, dropout, batch_norm)"),
])
def test_bad_options_name_the_field_and_what_is_allowed(override, expected):
    with pytest.raises(UserError) as e:
        load_config(None, ["model.name=vgg", override])
    assert expected in str(e.value)
